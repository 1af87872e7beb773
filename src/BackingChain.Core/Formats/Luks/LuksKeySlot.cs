namespace BackingChain.Formats.Luks;

/// <summary>One LUKS1 key slot, as qemu reports it (no key material is read).</summary>
/// <param name="Active">Whether the slot holds a key.</param>
/// <param name="Iterations">PBKDF2 iterations of the slot.</param>
/// <param name="KeyOffset">Offset of the key material in bytes from the start of the LUKS header.</param>
/// <param name="Stripes">Anti-forensic stripes.</param>
public readonly record struct LuksKeySlot(bool Active, uint Iterations, long KeyOffset, uint Stripes);
