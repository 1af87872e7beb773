using System;

namespace BackingChain.Formats.Vmdk;

/// <summary>
/// One extent line of a VMDK descriptor that qemu 7.2 uses: <c>RW SECTORS TYPE "FILE" [OFFSET]</c>.
/// The file name is a range into the descriptor text it was read from.
/// </summary>
internal readonly struct VmdkExtentLine
{
    /// <summary>The extent's size in sectors, as the line states it (sparse extents take theirs from their header).</summary>
    public long Sectors { get; internal init; }

    /// <summary>The extent type.</summary>
    public VmdkExtentType Type { get; internal init; }

    /// <summary>Where the quoted file name lies in the descriptor text.</summary>
    public Range FileNameRange { get; internal init; }

    /// <summary>The offset into the file, in sectors (FLAT only; 0 otherwise).</summary>
    public long FlatOffset { get; internal init; }

    /// <summary>Where the line starts in the descriptor text.</summary>
    public int LineStart { get; internal init; }

    /// <summary>Whether the extent holds raw data (FLAT or VMFS) rather than a sparse format.</summary>
    public bool IsFlat => Type is VmdkExtentType.Flat or VmdkExtentType.Vmfs;

    /// <summary>The type as the descriptor spells it (what qemu shows as the extent's <c>format</c>).</summary>
    public string TypeName => Type switch
    {
        VmdkExtentType.Flat => "FLAT",
        VmdkExtentType.Sparse => "SPARSE",
        VmdkExtentType.Vmfs => "VMFS",
        VmdkExtentType.VmfsSparse => "VMFSSPARSE",
        _ => "SESPARSE",
    };
}
