using System;

namespace BackingChain.Formats.Vhdx;

/// <summary>One entry of the VHDX region table: a region's GUID, place and whether readers must know it.</summary>
internal readonly struct VhdxRegionTableEntry
{
    /// <summary>Gets the region's GUID (BAT or metadata for the two regions [MS-VHDX] defines).</summary>
    public Guid Guid { get; internal init; }

    /// <summary>Gets the region's file offset (1 MiB aligned by the spec).</summary>
    public ulong FileOffset { get; internal init; }

    /// <summary>Gets the region's length in bytes.</summary>
    public uint Length { get; internal init; }

    /// <summary>Gets whether a reader that does not know the region must refuse the file.</summary>
    public bool Required { get; internal init; }
}
