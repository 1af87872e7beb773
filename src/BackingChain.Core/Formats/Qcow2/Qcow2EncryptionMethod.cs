namespace BackingChain.Formats.Qcow2;

/// <summary>The qcow2 <c>crypt_method</c> field.</summary>
public enum Qcow2EncryptionMethod : uint
{
    /// <summary>Not encrypted.</summary>
    None = 0,

    /// <summary>Legacy AES-CBC with the passphrase as key.</summary>
    Aes = 1,

    /// <summary>LUKS; the LUKS header is found through the full-disk-encryption header extension.</summary>
    Luks = 2,
}
