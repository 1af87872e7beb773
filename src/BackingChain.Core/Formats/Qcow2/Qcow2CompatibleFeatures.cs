using System;

namespace BackingChain.Formats.Qcow2;

/// <summary>qcow2 compatible feature bits (header offset 80): unknown ones are ignored.</summary>
[Flags]
public enum Qcow2CompatibleFeatures : ulong
{
    /// <summary>No bit set.</summary>
    None = 0,

    /// <summary>Bit 0: refcount updates are postponed (lazy refcounts).</summary>
    LazyRefcounts = 1UL << 0,
}
