using System;

namespace BackingChain.Formats.Vhdx;

/// <summary>One entry of the VHDX metadata table: an item's id and where its value lies in the metadata region.</summary>
internal readonly struct VhdxMetadataTableEntry
{
    /// <summary>Gets the item's GUID (file parameters, virtual disk size, sector sizes, parent locator...).</summary>
    public Guid ItemId { get; internal init; }

    /// <summary>Gets the value's offset from the start of the metadata region.</summary>
    public uint Offset { get; internal init; }

    /// <summary>Gets the value's length in bytes.</summary>
    public uint Length { get; internal init; }

    /// <summary>Gets whether the item is user metadata.</summary>
    public bool IsUser { get; internal init; }

    /// <summary>Gets whether the item describes the virtual disk (rather than the file).</summary>
    public bool IsVirtualDisk { get; internal init; }

    /// <summary>Gets whether a reader that does not know the item must refuse the file.</summary>
    public bool IsRequired { get; internal init; }
}
