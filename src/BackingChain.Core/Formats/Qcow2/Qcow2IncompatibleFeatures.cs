using System;

namespace BackingChain.Formats.Qcow2;

/// <summary>qcow2 incompatible feature bits (header offset 72): an image setting an unknown one cannot be opened.</summary>
[Flags]
public enum Qcow2IncompatibleFeatures : ulong
{
    /// <summary>No bit set.</summary>
    None = 0,

    /// <summary>Bit 0: refcounts may be stale; reported as <c>dirty-flag</c>.</summary>
    Dirty = 1UL << 0,

    /// <summary>Bit 1: the image is corrupt and may only be opened read-only.</summary>
    Corrupt = 1UL << 1,

    /// <summary>Bit 2: guest data lives in an external data file.</summary>
    ExternalDataFile = 1UL << 2,

    /// <summary>Bit 3: the compression type field is not zlib.</summary>
    CompressionType = 1UL << 3,

    /// <summary>Bit 4: L2 entries are 128 bits wide, with subcluster allocation.</summary>
    ExtendedL2 = 1UL << 4,
}
