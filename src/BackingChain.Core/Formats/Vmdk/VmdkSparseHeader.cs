using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Vmdk.VmdkLayout;

namespace BackingChain.Formats.Vmdk;

/// <summary>
/// The hosted sparse extent header "KDMV" (VMDK4Header) of monolithicSparse, streamOptimized and split
/// sparse extent files, validated as qemu 7.2's <c>vmdk_open_vmdk4</c> validates it.
/// </summary>
/// <remarks>
/// Parsing allocates nothing. When <see cref="GdOffset"/> is <c>GD_AT_END</c> (stream-optimized files written
/// by VMware), the header that counts is the copy in the footer: parse it with
/// <see cref="TryParseFooter(ReadOnlySpan{byte}, out VmdkSparseHeader, out HeaderError)"/>.
/// A header with capacity 0 and a descriptor offset is a descriptor container (<see cref="IsDescriptorContainer"/>):
/// qemu then reads the embedded text as a descriptor file and ignores the other fields.
/// </remarks>
internal readonly struct VmdkSparseHeader
{
    /// <summary>The version: 1, 2 (zeroed grains) or 3 (stream-optimized / changed block tracking).</summary>
    public uint Version { get; internal init; }

    /// <summary>The flags (new-line detection, redundant grain table, zeroed grains, compressed grains, markers).</summary>
    public uint Flags { get; internal init; }

    /// <summary>The capacity of the extent, in sectors.</summary>
    public ulong Capacity { get; internal init; }

    /// <summary>The grain size, in sectors.</summary>
    public ulong Granularity { get; internal init; }

    /// <summary>The offset of the embedded descriptor, in sectors.</summary>
    public ulong DescriptorOffset { get; internal init; }

    /// <summary>The size of the embedded descriptor, in sectors.</summary>
    public ulong DescriptorSize { get; internal init; }

    /// <summary>The number of entries of a grain table (at most 512).</summary>
    public uint NumGtesPerGt { get; internal init; }

    /// <summary>The offset of the redundant grain directory, in sectors.</summary>
    public ulong RgdOffset { get; internal init; }

    /// <summary>The offset of the grain directory, in sectors (<see cref="ulong.MaxValue"/> = in the footer).</summary>
    public ulong GdOffset { get; internal init; }

    /// <summary>The offset of the first grain ("overhead"), in sectors; the file must be at least this long.</summary>
    public ulong GrainOffset { get; internal init; }

    /// <summary>The unclean-shutdown byte.</summary>
    public byte UncleanShutdown { get; internal init; }

    /// <summary>The compression algorithm (1 = deflate).</summary>
    public ushort CompressAlgorithm { get; internal init; }

    /// <summary>The number of grain directory entries qemu derives (and bounds) from the capacity.</summary>
    public uint L1Size { get; internal init; }

    /// <summary>Whether grains are deflate-compressed: qemu then calls the image "streamOptimized".</summary>
    public bool IsCompressed => CompressAlgorithm == CompressionDeflate;

    /// <summary>Whether the header defers to the footer copy (grain directory at end).</summary>
    public bool IsGrainDirectoryAtEnd => GdOffset == GdAtEnd;

    /// <summary>Whether this is a descriptor container: capacity 0 and a descriptor offset.</summary>
    public bool IsDescriptorContainer => Capacity == 0 && DescriptorOffset != 0;

    /// <summary>The grain size in bytes.</summary>
    public long GrainSize => (long)Granularity * SectorSize;

    /// <summary>Parses the header at the start of <paramref name="data"/> (at least its first 79 bytes); never throws for bad data.</summary>
    /// <param name="data">The first sector of the extent file.</param>
    /// <param name="header">The header, when parsing succeeded. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it did not.</param>
    /// <returns><see langword="true"/> when the header is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out VmdkSparseHeader header, out HeaderError error)
    {
        error = Read(data, out header);
        return error == HeaderError.None;
    }

    /// <summary>Parses the header at the start of <paramref name="data"/>.</summary>
    /// <param name="data">The first sector of the extent file.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid KDMV header.</exception>
    public static VmdkSparseHeader Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out VmdkSparseHeader header);
        if (error != HeaderError.None)
        {
            ThrowInvalid(error);
        }

        return header;
    }

    /// <summary>
    /// Parses the stream-optimized footer: a footer marker sector, the header copy, and an end-of-stream
    /// marker sector, as qemu checks them ("Invalid footer").
    /// </summary>
    /// <param name="footer">The 1536 bytes that end 1536 bytes before the sector-rounded end of the file.</param>
    /// <param name="header">The header copy, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the footer and its header are valid.</returns>
    public static bool TryParseFooter(ReadOnlySpan<byte> footer, out VmdkSparseHeader header, out HeaderError error)
    {
        error = ReadFooter(footer, out header);
        return error == HeaderError.None;
    }

    internal static HeaderError ReadFooter(ReadOnlySpan<byte> footer, out VmdkSparseHeader header)
    {
        header = default;
        if (footer.Length < FooterLength)
        {
            return HeaderError.Truncated;
        }

        ReadOnlySpan<byte> footerMarker = footer[..SectorSize];
        ReadOnlySpan<byte> headerSector = footer.Slice(SectorSize, SectorSize);
        ReadOnlySpan<byte> endMarker = footer.Slice(2 * SectorSize, SectorSize);
        if (BinaryPrimitives.ReadUInt32BigEndian(headerSector) != Vmdk4Magic
            || BinaryPrimitives.ReadUInt32LittleEndian(footerMarker[MarkerSizeOffset..]) != 0
            || BinaryPrimitives.ReadUInt32LittleEndian(footerMarker[MarkerTypeOffset..]) != MarkerFooter
            || BinaryPrimitives.ReadUInt64LittleEndian(endMarker[MarkerValueOffset..]) != 0
            || BinaryPrimitives.ReadUInt32LittleEndian(endMarker[MarkerSizeOffset..]) != 0
            || BinaryPrimitives.ReadUInt32LittleEndian(endMarker[MarkerTypeOffset..]) != MarkerEndOfStream)
        {
            return HeaderError.Inconsistent;
        }

        // The footer's copy is always checked in full (its own capacity and gd_offset are taken as they are).
        HeaderError error = ReadFields(headerSector, out header);
        return error != HeaderError.None ? error : Validate(ref header);
    }

    /// <summary>The one parsing core for the header at the start of a file.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out VmdkSparseHeader header)
    {
        HeaderError error = ReadFields(data, out header);
        if (error != HeaderError.None)
        {
            return error;
        }

        // A descriptor container is read as a descriptor file, and a grain-directory-at-end header defers
        // to its footer copy: qemu checks neither further.
        return header.IsDescriptorContainer || header.IsGrainDirectoryAtEnd ? HeaderError.None : Validate(ref header);
    }

    private static HeaderError ReadFields(ReadOnlySpan<byte> data, out VmdkSparseHeader header)
    {
        header = default;
        if (data.Length < Vmdk4HeaderLength)
        {
            return HeaderError.Truncated;
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(data[MagicOffset..]) != Vmdk4Magic)
        {
            return HeaderError.BadMagic;
        }

        header = new VmdkSparseHeader
        {
            Version = BinaryPrimitives.ReadUInt32LittleEndian(data[VersionOffset..]),
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(data[FlagsOffset..]),
            Capacity = BinaryPrimitives.ReadUInt64LittleEndian(data[CapacityOffset..]),
            Granularity = BinaryPrimitives.ReadUInt64LittleEndian(data[GranularityOffset..]),
            DescriptorOffset = BinaryPrimitives.ReadUInt64LittleEndian(data[DescOffsetOffset..]),
            DescriptorSize = BinaryPrimitives.ReadUInt64LittleEndian(data[DescSizeOffset..]),
            NumGtesPerGt = BinaryPrimitives.ReadUInt32LittleEndian(data[NumGtesPerGtOffset..]),
            RgdOffset = BinaryPrimitives.ReadUInt64LittleEndian(data[RgdOffsetOffset..]),
            GdOffset = BinaryPrimitives.ReadUInt64LittleEndian(data[GdOffsetOffset..]),
            GrainOffset = BinaryPrimitives.ReadUInt64LittleEndian(data[GrainOffsetOffset..]),
            UncleanShutdown = data[UncleanShutdownOffset],
            CompressAlgorithm = BinaryPrimitives.ReadUInt16LittleEndian(data[CompressAlgorithmOffset..]),
        };

        return HeaderError.None;
    }

    /// <summary>The checks qemu makes on the header that counts (the footer copy for grain-directory-at-end files).</summary>
    private static HeaderError Validate(ref VmdkSparseHeader header)
    {
        // "Unsupported VMDK version N" (version 3 is only refused for writable opens).
        if (header.Version > MaxVersion)
        {
            return HeaderError.UnsupportedVersion;
        }

        // "L2 table size too big"
        if (header.NumGtesPerGt > MaxGtesPerGt)
        {
            return HeaderError.InvalidSize;
        }

        // "L1 entry size is invalid". qemu keeps the product in 32 bits; the truncation is kept so that the
        // same headers are accepted (a granularity of 2^32 is then caught by the granularity check below).
        uint l1EntrySectors = unchecked((uint)(header.NumGtesPerGt * header.Granularity));
        if (l1EntrySectors == 0)
        {
            return HeaderError.InvalidSize;
        }

        // "Invalid granularity, image may be corrupt"
        if (header.Granularity > MaxGranularitySectors)
        {
            return HeaderError.InvalidSize;
        }

        // "L1 size too big". capacity + entry - 1 wraps in qemu for capacities near 2^64; kept likewise.
        ulong l1Size = unchecked(header.Capacity + l1EntrySectors - 1) / l1EntrySectors;
        if ((uint)l1Size > MaxL1Entries)
        {
            return HeaderError.InvalidSize;
        }

        // The grain directories are read with bdrv_pread, which refuses offsets past INT64_MAX.
        ulong l1Bytes = (uint)l1Size * (ulong)sizeof(uint);
        if (!IsReadableSectorRange(header.GdOffset, l1Bytes)
            || ((header.Flags & FlagRedundantGrainTable) != 0 && !IsReadableSectorRange(header.RgdOffset, l1Bytes)))
        {
            return HeaderError.InvalidOffset;
        }

        // qemu's total length (capacity * 512) must be a valid int64.
        if (header.Capacity > long.MaxValue >> SectorShift)
        {
            return HeaderError.InvalidSize;
        }

        header = header with { L1Size = (uint)l1Size };
        return HeaderError.None;
    }

    /// <summary>Whether sector offset × 512 (qemu shifts it left by 9 in 64 bits) and the range's end stay within INT64_MAX.</summary>
    private static bool IsReadableSectorRange(ulong sectorOffset, ulong length)
    {
        ulong offset = unchecked(sectorOffset << SectorShift);
        return offset <= long.MaxValue && length <= long.MaxValue - offset;
    }

    /// <summary>Describes an error the way qemu words the matching open failure.</summary>
    internal static string Describe(HeaderError error) => error switch
    {
        HeaderError.Truncated => "File is too small, not a valid image",
        HeaderError.BadMagic => "Image not in VMDK format",
        HeaderError.UnsupportedVersion => "Unsupported VMDK version",
        HeaderError.Inconsistent => "Invalid footer",
        HeaderError.InvalidSize => "Invalid VMDK header: L2 table size, L1 entry size, granularity, L1 size or capacity out of range",
        HeaderError.InvalidOffset => "Invalid VMDK header: grain directory offset out of range",
        _ => "Invalid VMDK header",
    };

    [DoesNotReturn]
    private static void ThrowInvalid(HeaderError error) =>
        throw new ImageFormatException(error, Describe(error));
}
