using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Qed.QedLayout;

namespace BackingChain.Formats.Qed;

/// <summary>
/// A QED header, validated as qemu 7.2's <c>bdrv_qed_do_open</c> validates it. The only backing format QED
/// can record is "raw" (feature bit 2); otherwise the backing file is probed.
/// </summary>
/// <remarks>
/// Parsing allocates nothing: the backing file name stays a range into the parsed buffer until
/// <see cref="GetBackingFileName(ReadOnlySpan{byte})"/> is called with that same buffer.
/// </remarks>
internal readonly struct QedHeader
{
    /// <summary>The cluster size in bytes (a power of two, 4 KiB to 64 MiB).</summary>
    public uint ClusterSize { get; internal init; }

    /// <summary>The size of an L1 or L2 table, in clusters (a power of two, 1 to 16).</summary>
    public uint TableSize { get; internal init; }

    /// <summary>The size of the header region, in clusters.</summary>
    public uint HeaderSize { get; internal init; }

    /// <summary>The feature bits.</summary>
    public QedFeatures Features { get; internal init; }

    /// <summary>The compatible feature bits (none are defined).</summary>
    public ulong CompatFeatures { get; internal init; }

    /// <summary>The autoclear feature bits (none are defined; qemu clears them when it opens the image writable).</summary>
    public ulong AutoclearFeatures { get; internal init; }

    /// <summary>Offset of the L1 table.</summary>
    public ulong L1TableOffset { get; internal init; }

    /// <summary>The virtual size in bytes.</summary>
    public ulong ImageSize { get; internal init; }

    /// <summary>Offset of the backing file name (meaningful only with <see cref="QedFeatures.BackingFile"/>).</summary>
    public uint BackingFileNameOffset { get; internal init; }

    /// <summary>Length of the backing file name.</summary>
    public uint BackingFileNameSize { get; internal init; }

    /// <summary>Where the backing file name lies in the parsed buffer (empty when there is none).</summary>
    public Range BackingFileNameRange { get; internal init; }

    /// <summary>Whether the image names a backing file (an empty name counts as none, as in qemu).</summary>
    public bool HasBackingFile => BackingFileNameRange.End.Value > BackingFileNameRange.Start.Value;

    /// <summary>Whether the header says the image needs a consistency check (it was not closed cleanly).</summary>
    public bool NeedsCheck => (Features & QedFeatures.NeedCheck) != 0;

    /// <summary>The backing format qemu uses: "raw" when the no-probe bit is set, else <see langword="null"/> (probed).</summary>
    public string? BackingFormat =>
        (Features & (QedFeatures.BackingFile | QedFeatures.BackingFormatNoProbe)) == (QedFeatures.BackingFile | QedFeatures.BackingFormatNoProbe)
            ? "raw"
            : null;

    /// <summary>Decodes the backing file name from the buffer that was parsed.</summary>
    /// <param name="data">The same buffer given to <see cref="TryParse(ReadOnlySpan{byte}, long, out QedHeader, out HeaderError)"/>.</param>
    /// <returns>The stored name, or <see langword="null"/> when there is none.</returns>
    /// <exception cref="ImageFormatException"><see cref="HeaderError.InvalidText"/> when the stored bytes are not valid UTF-8: a name is never decoded lossily, so that it cannot mean another file than the one qemu opens.</exception>
    public string? GetBackingFileName(ReadOnlySpan<byte> data) =>
        HasBackingFile ? CString.ToName(data[BackingFileNameRange], "backing file name") : null;

    /// <summary>Parses a QED header; never throws for bad data.</summary>
    /// <param name="data">The start of the image, through the end of the backing file name.</param>
    /// <param name="fileLength">The length of the whole image file: qemu requires the L1 table to lie within it.</param>
    /// <param name="header">The header, when parsing succeeded. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it did not.</param>
    /// <returns><see langword="true"/> when the header is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, long fileLength, out QedHeader header, out HeaderError error)
    {
        error = Read(data, fileLength, dataReachesEndOfFile: data.Length >= fileLength, out header, out _);
        return error == HeaderError.None;
    }

    /// <summary>Parses a QED header.</summary>
    /// <param name="data">The start of the image, through the end of the backing file name.</param>
    /// <param name="fileLength">The length of the whole image file.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid QED header.</exception>
    public static QedHeader Parse(ReadOnlySpan<byte> data, long fileLength)
    {
        HeaderError error = Read(data, fileLength, dataReachesEndOfFile: data.Length >= fileLength, out QedHeader header, out _);
        if (error != HeaderError.None)
        {
            ThrowInvalid(error, header);
        }

        return header;
    }

    /// <summary>
    /// The one parsing core. When the backing name lies past the buffer it returns
    /// <see cref="HeaderError.Truncated"/> with the length it needs (and the fixed fields in
    /// <paramref name="header"/>), unless the buffer is the whole file: then the missing bytes read as zeros.
    /// </summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, long fileLength, bool dataReachesEndOfFile, out QedHeader header, out long requiredLength)
    {
        header = default;
        requiredLength = HeaderLength;
        if (data.Length < HeaderLength && !dataReachesEndOfFile)
        {
            return HeaderError.Truncated;
        }

        // qemu reads a fixed 64-byte structure; a short file reads as zeros past its end.
        Span<byte> fixedHeader = stackalloc byte[HeaderLength];
        fixedHeader.Clear();
        data[..Math.Min(data.Length, HeaderLength)].CopyTo(fixedHeader);

        // "Image not in QED format"
        if (BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader[MagicOffset..]) != Magic)
        {
            return HeaderError.BadMagic;
        }

        uint clusterSize = BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader[ClusterSizeOffset..]);
        uint tableSize = BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader[TableSizeOffset..]);
        uint headerSize = BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader[HeaderSizeOffset..]);
        ulong features = BinaryPrimitives.ReadUInt64LittleEndian(fixedHeader[FeaturesOffset..]);
        ulong compatFeatures = BinaryPrimitives.ReadUInt64LittleEndian(fixedHeader[CompatFeaturesOffset..]);
        ulong autoclearFeatures = BinaryPrimitives.ReadUInt64LittleEndian(fixedHeader[AutoclearFeaturesOffset..]);
        ulong l1TableOffset = BinaryPrimitives.ReadUInt64LittleEndian(fixedHeader[L1TableOffsetOffset..]);
        ulong imageSize = BinaryPrimitives.ReadUInt64LittleEndian(fixedHeader[ImageSizeOffset..]);
        uint backingOffset = BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader[BackingFileNameOffsetOffset..]);
        uint backingSize = BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader[BackingFileNameSizeOffset..]);

        // "Unsupported QED features: N"
        if ((features & ~(ulong)QedFeatures.Known) != 0)
        {
            header = new QedHeader { Features = (QedFeatures)features };
            return HeaderError.UnsupportedFeature;
        }

        // "QED cluster size is invalid"
        if (!IsPowerOfTwoIn(clusterSize, MinClusterSize, MaxClusterSize))
        {
            return HeaderError.InvalidSize;
        }

        // "QED table size is invalid"
        if (!IsPowerOfTwoIn(tableSize, MinTableSize, MaxTableSize))
        {
            return HeaderError.InvalidSize;
        }

        // "QED image size is invalid"
        if (imageSize % SectorSize != 0 || imageSize > MaxImageSize(clusterSize, tableSize))
        {
            return HeaderError.InvalidSize;
        }

        // "QED table offset is invalid": the L1 table's first and last cluster lie in the file, past the header.
        // qemu compares against the file length rounded down to whole clusters.
        ulong fileClusters = fileLength <= 0 ? 0 : (ulong)fileLength & ~(ulong)(clusterSize - 1);
        ulong headerBytes = (ulong)headerSize * clusterSize;
        ulong tableEnd = unchecked(l1TableOffset + (ulong)(tableSize - 1) * clusterSize);
        if (tableEnd <= l1TableOffset
            || !IsClusterOffsetValid(l1TableOffset, clusterSize, headerBytes, fileClusters)
            || !IsClusterOffsetValid(tableEnd, clusterSize, headerBytes, fileClusters))
        {
            return HeaderError.InvalidOffset;
        }

        // "QED header size is too large": header_size * cluster_size must fit in 32 bits.
        if (headerSize > uint.MaxValue / clusterSize)
        {
            return HeaderError.InvalidSize;
        }

        var result = new QedHeader
        {
            ClusterSize = clusterSize,
            TableSize = tableSize,
            HeaderSize = headerSize,
            Features = (QedFeatures)features,
            CompatFeatures = compatFeatures,
            AutoclearFeatures = autoclearFeatures,
            L1TableOffset = l1TableOffset,
            ImageSize = imageSize,
            BackingFileNameOffset = backingOffset,
            BackingFileNameSize = backingSize,
        };

        if ((features & (ulong)QedFeatures.BackingFile) != 0)
        {
            // "QED backing filename offset is invalid": the name lies within the header clusters.
            if ((ulong)backingOffset + backingSize > headerBytes)
            {
                return HeaderError.InvalidOffset;
            }

            // qed_read_string needs room for the terminating NUL in a 4096-byte buffer.
            if (backingSize >= BackingFilenameBufferSize)
            {
                return HeaderError.InvalidSize;
            }

            long nameStart = backingOffset;
            long nameEnd = nameStart + backingSize;
            if (nameEnd > data.Length)
            {
                // qemu would read zeros past the end of the file; a name cut by the end of the file is
                // truncated, and we say so rather than judge a name qemu would see differently, as the qcow2 reader does.
                header = result;
                requiredLength = nameEnd;
                return HeaderError.Truncated;
            }

            int start = (int)nameStart;
            int end = (int)nameEnd;
            result = result with { BackingFileNameRange = new Range(start, start + CString.Of(data[start..end]).Length) };
        }

        header = result;
        requiredLength = 0;
        return HeaderError.None;
    }

    /// <summary>Describes an error the way qemu words the matching open failure.</summary>
    internal static string Describe(HeaderError error, in QedHeader header) => error switch
    {
        HeaderError.Truncated => "QED header is truncated",
        HeaderError.BadMagic => "Image not in QED format",
        HeaderError.UnsupportedFeature => $"Unsupported QED features: {(ulong)header.Features & ~(ulong)QedFeatures.Known:x}",
        HeaderError.InvalidSize => "Invalid QED header: cluster size, table size, image size, header size or backing filename length out of range",
        HeaderError.InvalidOffset => "Invalid QED header: the L1 table or backing filename offset is invalid",
        _ => "Invalid QED header",
    };

    /// <summary>
    /// qed_max_image_size: entries per table × bytes per L2 table. qemu computes the product in 64 bits and
    /// lets it wrap (for 64 MiB clusters and 16-cluster tables it wraps to 0); the wrap is kept so that the
    /// same images are accepted. Nothing is allocated from this number.
    /// </summary>
    private static ulong MaxImageSize(uint clusterSize, uint tableSize)
    {
        ulong tableEntries = (ulong)tableSize * clusterSize / TableEntrySize;
        ulong l2Bytes = tableEntries * clusterSize;
        return unchecked(l2Bytes * tableEntries);
    }

    private static bool IsPowerOfTwoIn(uint value, uint min, uint max) =>
        value >= min && value <= max && (value & (value - 1)) == 0;

    /// <summary>qed_check_cluster_offset: aligned, past the header, before the (cluster-rounded) end of the file.</summary>
    private static bool IsClusterOffsetValid(ulong offset, uint clusterSize, ulong headerBytes, ulong fileClusters) =>
        (offset & (clusterSize - 1)) == 0 && offset >= headerBytes && offset < fileClusters;

    [DoesNotReturn]
    private static void ThrowInvalid(HeaderError error, in QedHeader header) =>
        throw new ImageFormatException(error, Describe(error, header));
}
