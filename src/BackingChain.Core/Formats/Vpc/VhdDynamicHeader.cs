using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Vpc.VhdLayout;

namespace BackingChain.Formats.Vpc;

/// <summary>
/// The 1024-byte dynamic disk header of a dynamic or differencing VHD (at the footer's data offset):
/// block size, BAT, and for differencing disks the parent's id, name and locators.
/// </summary>
/// <remarks>
/// Parsing allocates nothing; the parent name and locators are read from the parsed buffer on request.
/// The checks that need the footer (qemu's "Too many blocks", "Page table too small") are the reader's.
/// </remarks>
internal readonly struct VhdDynamicHeader
{
    /// <summary>Gets the (unused) data offset, all ones.</summary>
    public ulong DataOffset { get; internal init; }

    /// <summary>Gets the absolute offset of the block allocation table.</summary>
    public ulong TableOffset { get; internal init; }

    /// <summary>Gets the header version (0x00010000).</summary>
    public uint HeaderVersion { get; internal init; }

    /// <summary>Gets the number of BAT entries.</summary>
    public uint MaxTableEntries { get; internal init; }

    /// <summary>Gets the block size in bytes (a power of two, at least 512; qemu reports it as <c>cluster-size</c>).</summary>
    public uint BlockSize { get; internal init; }

    /// <summary>Gets the stored checksum (qemu does not verify it).</summary>
    public uint Checksum { get; internal init; }

    /// <summary>Gets the parent's unique id (its footer's <see cref="VhdFooter.UniqueId"/>), for differencing disks.</summary>
    public Guid ParentUniqueId { get; internal init; }

    /// <summary>Gets the parent's modification time in seconds since 2000-01-01 00:00 UTC.</summary>
    public uint ParentTimeStamp { get; internal init; }

    /// <summary>Gets whether the stored checksum matches the header's bytes.</summary>
    public bool ChecksumValid { get; internal init; }

    /// <summary>Decodes the parent's file name (UTF-16 big-endian, NUL padded).</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <returns>The name, or <see langword="null"/> when it is empty or not valid UTF-16.</returns>
    public static string? GetParentUnicodeName(ReadOnlySpan<byte> data) =>
        TryGetParentUnicodeName(data, out string? name) is null ? name : null;

    /// <summary>Decodes the parent's file name strictly (see <see cref="Utf16Names"/>).</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <param name="name">The name, or <see langword="null"/> when it is empty.</param>
    /// <returns>Why the field is not a valid name, or <see langword="null"/>.</returns>
    internal static string? TryGetParentUnicodeName(ReadOnlySpan<byte> data, out string? name) =>
        Utf16Names.TryDecode(data.Slice(ParentUnicodeNameOffset, ParentUnicodeNameLength), bigEndian: true, allowTrailingNul: true, out name);

    /// <summary>Reads parent locator entry <paramref name="index"/> from the parsed buffer.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <param name="index">0 to 7.</param>
    /// <returns>The locator entry.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is not 0 to 7.</exception>
    public static VhdParentLocator GetParentLocator(ReadOnlySpan<byte> data, int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, ParentLocatorCount);
        ReadOnlySpan<byte> entry = data.Slice(ParentLocatorsOffset + (index * LocatorEntrySize), LocatorEntrySize);
        return new VhdParentLocator
        {
            PlatformCode = (VhdPlatformCode)BinaryPrimitives.ReadUInt32BigEndian(entry[LocatorPlatformCodeOffset..]),
            PlatformDataSpace = BinaryPrimitives.ReadUInt32BigEndian(entry[LocatorDataSpaceOffset..]),
            PlatformDataLength = BinaryPrimitives.ReadUInt32BigEndian(entry[LocatorDataLengthOffset..]),
            PlatformDataOffset = BinaryPrimitives.ReadUInt64BigEndian(entry[LocatorDataOffsetOffset..]),
        };
    }

    /// <summary>Parses a dynamic disk header; never throws for bad data.</summary>
    /// <param name="data">The 1024 header bytes.</param>
    /// <param name="header">The header, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the header is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out VhdDynamicHeader header, out HeaderError error)
    {
        error = Read(data, out header);
        return error == HeaderError.None;
    }

    /// <summary>Parses a dynamic disk header.</summary>
    /// <param name="data">The 1024 header bytes.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid dynamic disk header.</exception>
    public static VhdDynamicHeader Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out VhdDynamicHeader header);
        if (error != HeaderError.None)
        {
            Throw(error, data);
        }

        return header;
    }

    /// <summary>qemu's message for a dynamic header error.</summary>
    internal static string Describe(HeaderError error, ReadOnlySpan<byte> data) => error switch
    {
        HeaderError.Truncated => "Error reading dynamic VHD header",
        HeaderError.BadMagic => "Invalid header magic",
        HeaderError.InvalidSize when data.Length >= DynamicHeaderSize && !IsValidBlockSize(BinaryPrimitives.ReadUInt32BigEndian(data[BlockSizeOffset..])) =>
            $"Invalid block size {BinaryPrimitives.ReadUInt32BigEndian(data[BlockSizeOffset..])}",
        HeaderError.InvalidSize when data.Length >= DynamicHeaderSize =>
            $"Max Table Entries too large ({BinaryPrimitives.ReadInt32BigEndian(data[MaxTableEntriesOffset..])})",
        _ => "Invalid dynamic VHD header",
    };

    /// <summary>The one parsing core.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out VhdDynamicHeader header)
    {
        header = default;
        if (data.Length < DynamicHeaderSize)
        {
            return HeaderError.Truncated;
        }

        data = data[..DynamicHeaderSize];
        if (BinaryPrimitives.ReadUInt64BigEndian(data[DynamicCookieOffset..]) != DynamicHeaderCookie)
        {
            return HeaderError.BadMagic;
        }

        uint blockSize = BinaryPrimitives.ReadUInt32BigEndian(data[BlockSizeOffset..]);
        if (!IsValidBlockSize(blockSize))
        {
            return HeaderError.InvalidSize;
        }

        // qemu keeps the count in an int and refuses more than INT_MAX / 4 (it allocates 4 bytes per entry).
        uint maxTableEntries = BinaryPrimitives.ReadUInt32BigEndian(data[MaxTableEntriesOffset..]);
        if (maxTableEntries > VhdLayout.MaxTableEntries)
        {
            return HeaderError.InvalidSize;
        }

        uint checksum = BinaryPrimitives.ReadUInt32BigEndian(data[DynamicChecksumOffset..]);
        header = new VhdDynamicHeader
        {
            DataOffset = BinaryPrimitives.ReadUInt64BigEndian(data[DynamicDataOffsetOffset..]),
            TableOffset = BinaryPrimitives.ReadUInt64BigEndian(data[TableOffsetOffset..]),
            HeaderVersion = BinaryPrimitives.ReadUInt32BigEndian(data[HeaderVersionOffset..]),
            MaxTableEntries = maxTableEntries,
            BlockSize = blockSize,
            Checksum = checksum,
            ParentUniqueId = new Guid(data.Slice(ParentUniqueIdOffset, GuidLength), bigEndian: true),
            ParentTimeStamp = BinaryPrimitives.ReadUInt32BigEndian(data[ParentTimeStampOffset..]),
            ChecksumValid = VhdFooter.SumExcluding(data, DynamicChecksumOffset) == checksum,
        };
        return HeaderError.None;
    }

    private static bool IsValidBlockSize(uint blockSize) => blockSize >= SectorSize && (blockSize & (blockSize - 1)) == 0;

    [DoesNotReturn]
    private static void Throw(HeaderError error, ReadOnlySpan<byte> data) => throw new ImageFormatException(error, Describe(error, data));
}
