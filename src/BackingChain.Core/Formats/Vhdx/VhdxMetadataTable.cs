using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Vhdx.VhdxLayout;

namespace BackingChain.Formats.Vhdx;

/// <summary>
/// The metadata table at the start of the VHDX metadata region: signature "metadata" and up to 2047 entries
/// that fit in its 64 KiB ([MS-VHDX] 2.6.1; qemu 7.2 <c>vhdx_parse_metadata</c>).
/// </summary>
/// <remarks>Parsing allocates nothing; entries are read from the parsed buffer with <see cref="GetEntry"/>.</remarks>
internal readonly struct VhdxMetadataTable
{
    /// <summary>Gets the number of entries.</summary>
    public int EntryCount { get; internal init; }

    /// <summary>Reads entry <paramref name="index"/> from the parsed buffer.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <param name="index">0 to <see cref="EntryCount"/> − 1.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is out of range.</exception>
    public VhdxMetadataTableEntry GetEntry(ReadOnlySpan<byte> data, int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, EntryCount);
        ReadOnlySpan<byte> entry = data.Slice(MetadataEntriesOffset + (index * MetadataEntrySize), MetadataEntrySize);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(entry[MetadataItemFlagsOffset..]);
        return new VhdxMetadataTableEntry
        {
            ItemId = new Guid(entry.Slice(MetadataItemIdOffset, GuidLength)),
            Offset = BinaryPrimitives.ReadUInt32LittleEndian(entry[MetadataItemOffsetOffset..]),
            Length = BinaryPrimitives.ReadUInt32LittleEndian(entry[MetadataItemLengthOffset..]),
            IsUser = (flags & MetadataFlagIsUser) != 0,
            IsVirtualDisk = (flags & MetadataFlagIsVirtualDisk) != 0,
            IsRequired = (flags & MetadataFlagIsRequired) != 0,
        };
    }

    /// <summary>Parses a metadata table; never throws for bad data.</summary>
    /// <param name="data">The first 64 KiB of the metadata region.</param>
    /// <param name="table">The table, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the table is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out VhdxMetadataTable table, out HeaderError error)
    {
        error = Read(data, out table);
        return error == HeaderError.None;
    }

    /// <summary>Parses a metadata table.</summary>
    /// <param name="data">The first 64 KiB of the metadata region.</param>
    /// <returns>The table.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid metadata table.</exception>
    public static VhdxMetadataTable Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out VhdxMetadataTable table);
        if (error != HeaderError.None)
        {
            Throw(error);
        }

        return table;
    }

    /// <summary>The one parsing core.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out VhdxMetadataTable table)
    {
        table = default;
        if (data.Length < MetadataTableSize)
        {
            return HeaderError.Truncated;
        }

        if (BinaryPrimitives.ReadUInt64LittleEndian(data[MetadataSignatureOffset..]) != MetadataSignature)
        {
            return HeaderError.BadMagic;
        }

        // qemu: the entries must fit in the 64 KiB table after its 32-byte header (at most 2047).
        int count = BinaryPrimitives.ReadUInt16LittleEndian(data[MetadataEntryCountOffset..]);
        if (count * MetadataEntrySize > MetadataTableSize - MetadataEntriesOffset)
        {
            return HeaderError.InvalidSize;
        }

        table = new VhdxMetadataTable { EntryCount = count };
        return HeaderError.None;
    }

    [DoesNotReturn]
    private static void Throw(HeaderError error) => throw new ImageFormatException(error, "Invalid VHDX metadata table");
}
