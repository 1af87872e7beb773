using System;

namespace BackingChain.Formats.Qcow2;

/// <summary>qcow2 autoclear feature bits (header offset 88): cleared by software that does not know them.</summary>
[Flags]
public enum Qcow2AutoclearFeatures : ulong
{
    /// <summary>No bit set.</summary>
    None = 0,

    /// <summary>Bit 0: the bitmaps extension is consistent.</summary>
    Bitmaps = 1UL << 0,

    /// <summary>Bit 1: the external data file is itself a valid raw image.</summary>
    RawExternalData = 1UL << 1,
}
