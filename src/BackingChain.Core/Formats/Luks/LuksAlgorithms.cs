using System;

namespace BackingChain.Formats.Luks;

/// <summary>
/// The algorithm names a LUKS1 header may carry for qemu 7.2 to open it, and qemu's order of checks
/// (<c>qcrypto_block_luks_parse_header</c>). qemu refuses any other name with "not supported" even when it needs no
/// key (<c>qemu-img info</c>), so an image with one is an image qemu cannot use: the reader fails the layer, in
/// every posture, exactly as qemu does. Names are compared byte for byte and case-sensitively, as qemu's enum
/// lookup does; the set is qemu's, not the crypto library's (a cipher the library lacks is still accepted here,
/// as by <c>qemu-img info</c>).
/// </summary>
internal static class LuksAlgorithms
{
    /// <summary>qemu 7.2's hash algorithms with their digest lengths (ESSIV keys its cipher with the digest).</summary>
    private static readonly (string Name, int DigestLength)[] Hashes =
    [
        ("md5", 16), ("sha1", 20), ("sha224", 28), ("sha256", 32), ("sha384", 48), ("sha512", 64), ("ripemd160", 20),
    ];

    private static readonly string[] Modes = ["ecb", "cbc", "xts", "ctr"];

    private static readonly string[] IvGenerators = ["plain", "plain64", "essiv"];

    /// <summary>The cipher names qemu maps to an algorithm, with the key sizes (bytes) each accepts.</summary>
    private static readonly (string Name, string Family, int[] KeySizes)[] Ciphers =
    [
        ("aes", "AES", [16, 24, 32]),
        ("cast5", "CAST5", [16]),
        ("serpent", "Serpent", [16, 24, 32]),
        ("twofish", "Twofish", [16, 24, 32]),
    ];

    /// <summary>
    /// Checks the cipher name, cipher mode specification (<c>mode-ivgen[:hash]</c>) and hash of a header whose three
    /// fields are NUL-terminated; returns qemu's message for the first problem, or <see langword="null"/>.
    /// </summary>
    /// <param name="cipherName">The cipher name field's text.</param>
    /// <param name="modeSpec">The cipher mode field's text.</param>
    /// <param name="hashSpec">The hash field's text.</param>
    /// <param name="keyBytes">The master key length from the header.</param>
    /// <param name="unsupported">Whether the problem is a name qemu does not know (rather than a malformed specification).</param>
    /// <returns>The message, or <see langword="null"/> when qemu 7.2 accepts the header's algorithms.</returns>
    public static string? Check(string cipherName, string modeSpec, string hashSpec, uint keyBytes, out bool unsupported)
    {
        unsupported = true;
        int dash = modeSpec.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0)
        {
            unsupported = false;
            return $"Unexpected cipher mode string format '{modeSpec}'";
        }

        string mode = modeSpec[..dash];
        string ivgen = modeSpec[(dash + 1)..];
        string? ivHash = null;
        int colon = ivgen.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            // qemu looks the hash up for every IV generator, though only ESSIV uses it.
            ivHash = ivgen[(colon + 1)..];
            ivgen = ivgen[..colon];
            if (DigestLength(ivHash) < 0)
            {
                return $"Hash algorithm '{ivHash}' not supported";
            }
        }

        if (Array.IndexOf(Modes, mode) < 0)
        {
            return $"Cipher mode '{mode}' not supported";
        }

        // XTS splits the master key in two keys of half the length.
        uint cipherKeyBytes = mode == "xts" ? keyBytes / 2 : keyBytes;
        int cipher = Array.FindIndex(Ciphers, c => c.Name == cipherName);
        if (cipher < 0 || Array.IndexOf(Ciphers[cipher].KeySizes, (int)Math.Min(cipherKeyBytes, int.MaxValue)) < 0)
        {
            return $"Algorithm '{cipherName}' with key size {(int)cipherKeyBytes} bytes not supported";
        }

        if (DigestLength(hashSpec) < 0)
        {
            return $"Hash algorithm '{hashSpec}' not supported";
        }

        if (Array.IndexOf(IvGenerators, ivgen) < 0)
        {
            return $"IV generator '{ivgen}' not supported";
        }

        if (ivgen == "essiv")
        {
            if (ivHash is null)
            {
                unsupported = false;
                return "Missing IV generator hash specification";
            }

            return EssivProblem(Ciphers[cipher].Name, Ciphers[cipher].Family, (int)cipherKeyBytes, DigestLength(ivHash));
        }

        return null;
    }

    /// <summary>
    /// ESSIV encrypts the sector number with a key that is the hash's digest, so the cipher must exist with that key
    /// size: the same cipher when the sizes match, else another size of its family; CAST5 has only one.
    /// </summary>
    private static string? EssivProblem(string cipher, string family, int keyBytes, int digestLength)
    {
        (string Name, string Family, int[] KeySizes) entry = Array.Find(Ciphers, c => c.Name == cipher);
        if (digestLength == keyBytes || (entry.KeySizes.Length > 1 && Array.IndexOf(entry.KeySizes, digestLength) >= 0))
        {
            return null;
        }

        return entry.KeySizes.Length > 1
            ? $"No {family} cipher with key size {digestLength} available"
            : $"Cipher {cipher}-{keyBytes * 8} not supported with essiv";
    }

    private static int DigestLength(string hash)
    {
        foreach ((string name, int length) in Hashes)
        {
            if (name == hash)
            {
                return length;
            }
        }

        return -1;
    }
}
