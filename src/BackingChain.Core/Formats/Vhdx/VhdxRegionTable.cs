using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Vhdx.VhdxLayout;

namespace BackingChain.Formats.Vhdx;

/// <summary>
/// The 64 KiB VHDX region table (at 192 KiB): signature "regi", CRC-32C over the block, at most 2047 entries
/// ([MS-VHDX] 2.2.3; qemu 7.2 <c>vhdx_open_region_tables</c>).
/// </summary>
/// <remarks>Parsing allocates nothing; entries are read from the parsed buffer with <see cref="GetEntry"/>.</remarks>
internal readonly struct VhdxRegionTable
{
    /// <summary>Gets the number of entries.</summary>
    public uint EntryCount { get; internal init; }

    /// <summary>Reads entry <paramref name="index"/> from the parsed buffer.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <param name="index">0 to <see cref="EntryCount"/> − 1.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is out of range.</exception>
    public VhdxRegionTableEntry GetEntry(ReadOnlySpan<byte> data, int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, EntryCount);
        ReadOnlySpan<byte> entry = data.Slice(RegionEntriesOffset + (index * RegionEntrySize), RegionEntrySize);
        return new VhdxRegionTableEntry
        {
            Guid = new Guid(entry.Slice(RegionEntryGuidOffset, GuidLength)),
            FileOffset = BinaryPrimitives.ReadUInt64LittleEndian(entry[RegionEntryFileOffsetOffset..]),
            Length = BinaryPrimitives.ReadUInt32LittleEndian(entry[RegionEntryLengthOffset..]),
            Required = (BinaryPrimitives.ReadUInt32LittleEndian(entry[RegionEntryRequiredOffset..]) & 1) != 0,
        };
    }

    /// <summary>Parses a region table; never throws for bad data.</summary>
    /// <param name="data">The 64 KiB region table block.</param>
    /// <param name="table">The table, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the table is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out VhdxRegionTable table, out HeaderError error)
    {
        error = Read(data, out table);
        return error == HeaderError.None;
    }

    /// <summary>Parses a region table.</summary>
    /// <param name="data">The 64 KiB region table block.</param>
    /// <returns>The table.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid region table.</exception>
    public static VhdxRegionTable Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out VhdxRegionTable table);
        if (error != HeaderError.None)
        {
            Throw(error);
        }

        return table;
    }

    /// <summary>The one parsing core.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out VhdxRegionTable table)
    {
        table = default;
        if (data.Length < RegionTableSize)
        {
            return HeaderError.Truncated;
        }

        data = data[..RegionTableSize];
        if (Crc32C.ComputeSkipping(data, RegionChecksumOffset) != BinaryPrimitives.ReadUInt32LittleEndian(data[RegionChecksumOffset..]))
        {
            return HeaderError.BadChecksum;
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(data[RegionSignatureOffset..]) != RegionTableSignature)
        {
            return HeaderError.BadMagic;
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(data[RegionEntryCountOffset..]);
        if (count > MaxRegionEntries)
        {
            return HeaderError.InvalidSize;
        }

        table = new VhdxRegionTable { EntryCount = count };
        return HeaderError.None;
    }

    [DoesNotReturn]
    private static void Throw(HeaderError error) => throw new ImageFormatException(error, "Invalid VHDX region table");
}
