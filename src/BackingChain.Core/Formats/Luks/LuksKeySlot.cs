namespace BackingChain.Formats.Luks;

/// <summary>One LUKS1 key slot, as qemu reports it (no key material is read).</summary>
public sealed class LuksKeySlot
{
    internal LuksKeySlot(bool active, uint iterations, long keyOffset, uint stripes)
    {
        Active = active;
        Iterations = iterations;
        KeyOffset = keyOffset;
        Stripes = stripes;
    }

    /// <summary>Whether the slot holds a key.</summary>
    public bool Active { get; }

    /// <summary>PBKDF2 iterations of the slot.</summary>
    public uint Iterations { get; }

    /// <summary>Offset of the key material in bytes from the start of the LUKS header.</summary>
    public long KeyOffset { get; }

    /// <summary>Anti-forensic stripes.</summary>
    public uint Stripes { get; }
}
