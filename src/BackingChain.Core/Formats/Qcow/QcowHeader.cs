using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Qcow.QcowLayout;

namespace BackingChain.Formats.Qcow;

/// <summary>
/// A qcow version 1 header, validated as qemu 7.2's <c>qcow_open</c> validates it. The format has no field
/// for the backing file's format, so a qcow backing file is always probed.
/// </summary>
/// <remarks>
/// Parsing allocates nothing: the backing file name stays a range into the parsed buffer until
/// <see cref="GetBackingFileName(ReadOnlySpan{byte})"/> is called with that same buffer.
/// </remarks>
internal readonly struct QcowHeader
{
    /// <summary>The format version (always 1 for a valid header).</summary>
    public uint Version { get; internal init; }

    /// <summary>Offset of the backing file name, or 0 when there is none.</summary>
    public ulong BackingFileOffset { get; internal init; }

    /// <summary>Length in bytes of the backing file name.</summary>
    public uint BackingFileSize { get; internal init; }

    /// <summary>Modification time (qemu writes 0 and never reads it).</summary>
    public uint Mtime { get; internal init; }

    /// <summary>The virtual size field, in bytes, as stored.</summary>
    public ulong Size { get; internal init; }

    /// <summary>log2 of the cluster size (9 to 16).</summary>
    public int ClusterBits { get; internal init; }

    /// <summary>log2 of the number of entries of an L2 table (6 to 13).</summary>
    public int L2Bits { get; internal init; }

    /// <summary>The encryption method: 0 none, 1 AES-CBC.</summary>
    public uint CryptMethod { get; internal init; }

    /// <summary>Offset of the L1 table.</summary>
    public ulong L1TableOffset { get; internal init; }

    /// <summary>Number of L1 entries qemu derives from the size, cluster and L2 bits.</summary>
    public uint L1Size { get; internal init; }

    /// <summary>Where the backing file name lies in the parsed buffer (empty when there is none).</summary>
    public Range BackingFileNameRange { get; internal init; }

    /// <summary>The cluster size in bytes.</summary>
    public int ClusterSize => 1 << ClusterBits;

    /// <summary>The virtual size qemu reports: <see cref="Size"/> rounded down to whole 512-byte sectors.</summary>
    public ulong VirtualSize => Size & ~511UL;

    /// <summary>Whether the image is AES encrypted.</summary>
    public bool IsEncrypted => CryptMethod != 0;

    /// <summary>Whether the image names a backing file (an empty name counts as none, as in qemu).</summary>
    public bool HasBackingFile => BackingFileNameRange.End.Value > BackingFileNameRange.Start.Value;

    /// <summary>Decodes the backing file name from the buffer that was parsed.</summary>
    /// <param name="data">The same buffer given to <see cref="TryParse(ReadOnlySpan{byte}, out QcowHeader, out HeaderError)"/>.</param>
    /// <returns>The stored name, or <see langword="null"/> when there is none.</returns>
    /// <exception cref="ImageFormatException"><see cref="HeaderError.InvalidText"/> when the stored bytes are not valid UTF-8: a name is never decoded lossily, so that it cannot mean another file than the one qemu opens.</exception>
    public string? GetBackingFileName(ReadOnlySpan<byte> data) =>
        HasBackingFile ? CString.ToName(data[BackingFileNameRange], "backing file name") : null;

    /// <summary>Parses a qcow header; never throws for bad data.</summary>
    /// <param name="data">The start of the image, through the end of the backing file name (or the whole file when shorter).</param>
    /// <param name="header">The header, when parsing succeeded. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it did not.</param>
    /// <returns><see langword="true"/> when the header is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out QcowHeader header, out HeaderError error)
    {
        error = Read(data, dataReachesEndOfFile: false, out header, out _);
        return error == HeaderError.None;
    }

    /// <summary>Parses a qcow header.</summary>
    /// <param name="data">The start of the image, through the end of the backing file name.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid qcow header.</exception>
    public static QcowHeader Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, dataReachesEndOfFile: false, out QcowHeader header, out _);
        if (error != HeaderError.None)
        {
            ThrowInvalid(error, data);
        }

        return header;
    }

    /// <summary>
    /// The one parsing core. When the backing name lies past the buffer it returns
    /// <see cref="HeaderError.Truncated"/> with the length it needs (and the fixed fields in
    /// <paramref name="header"/>), unless the buffer is the whole file: then, as qemu's reads past the end
    /// of a file do, the missing bytes count as zeros.
    /// </summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, bool dataReachesEndOfFile, out QcowHeader header, out long requiredLength)
    {
        header = default;
        requiredLength = HeaderLength;
        if (data.Length < HeaderLength && !dataReachesEndOfFile)
        {
            return HeaderError.Truncated;
        }

        // qemu reads a fixed 48-byte structure; a short file reads as zeros past its end.
        Span<byte> fixedHeader = stackalloc byte[HeaderLength];
        fixedHeader.Clear();
        data[..Math.Min(data.Length, HeaderLength)].CopyTo(fixedHeader);

        // "Image not in qcow format"
        if (BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[MagicOffset..]) != Magic)
        {
            return HeaderError.BadMagic;
        }

        // "qcow (v1) does not support qcow version N" (+ "Try the 'qcow2' driver instead.")
        uint version = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[VersionOffset..]);
        if (version != Version1)
        {
            return HeaderError.UnsupportedVersion;
        }

        ulong backingFileOffset = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[BackingFileOffsetOffset..]);
        uint backingFileSize = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[BackingFileSizeOffset..]);
        uint mtime = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[MtimeOffset..]);
        ulong size = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[SizeOffset..]);
        int clusterBits = fixedHeader[ClusterBitsOffset];
        int l2Bits = fixedHeader[L2BitsOffset];
        uint cryptMethod = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[CryptMethodOffset..]);
        ulong l1TableOffset = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[L1TableOffsetOffset..]);

        // "Image size is too small (must be at least 2 bytes)"
        if (size < MinSize)
        {
            return HeaderError.InvalidSize;
        }

        // "Cluster size must be between 512 and 64k"
        if (clusterBits is < MinClusterBits or > MaxClusterBits)
        {
            return HeaderError.InvalidSize;
        }

        // "L2 table size must be between 512 and 64k"
        if (l2Bits is < MinL2Bits or > MaxL2Bits)
        {
            return HeaderError.InvalidSize;
        }

        // "invalid encryption method in qcow header"
        if (cryptMethod > MaxCryptMethod)
        {
            return HeaderError.UnsupportedFeature;
        }

        // "Image too large": the L1 table must cover the size with at most INT_MAX/8 entries.
        int shift = clusterBits + l2Bits; // at most 29
        ulong bytesPerL1Entry = 1UL << shift;
        if (size > ulong.MaxValue - bytesPerL1Entry)
        {
            return HeaderError.InvalidSize;
        }

        ulong l1Size = (size + bytesPerL1Entry - 1) >> shift;
        if (l1Size > MaxL1Entries)
        {
            return HeaderError.InvalidSize;
        }

        // qemu reads the L1 table with bdrv_pread, which refuses offsets past INT64_MAX; past EOF it reads zeros.
        if (!IsReadable(l1TableOffset, l1Size * sizeof(ulong)))
        {
            return HeaderError.InvalidOffset;
        }

        var result = new QcowHeader
        {
            Version = version,
            BackingFileOffset = backingFileOffset,
            BackingFileSize = backingFileSize,
            Mtime = mtime,
            Size = size,
            ClusterBits = clusterBits,
            L2Bits = l2Bits,
            CryptMethod = cryptMethod,
            L1TableOffset = l1TableOffset,
            L1Size = (uint)l1Size,
        };

        if (backingFileOffset != 0)
        {
            // "Backing file name too long"
            if (backingFileSize > MaxBackingFileNameLength)
            {
                return HeaderError.InvalidSize;
            }

            if (!IsReadable(backingFileOffset, backingFileSize))
            {
                return HeaderError.InvalidOffset;
            }

            long nameStart = (long)backingFileOffset;
            long nameEnd = nameStart + backingFileSize;
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
            result = result with { BackingFileNameRange = new Range(start, start + CStringLength(data[start..end])) };
        }

        header = result;
        requiredLength = 0;
        return HeaderError.None;
    }

    /// <summary>Describes an error the way qemu words the matching open failure.</summary>
    internal static string Describe(HeaderError error, ReadOnlySpan<byte> data) => error switch
    {
        HeaderError.Truncated => "qcow header is truncated",
        HeaderError.BadMagic => "Image not in qcow format",
        HeaderError.UnsupportedVersion => data.Length >= HeaderLength
            ? $"qcow (v1) does not support qcow version {BinaryPrimitives.ReadUInt32BigEndian(data[VersionOffset..])}"
            : "qcow (v1) does not support this qcow version",
        HeaderError.UnsupportedFeature => "invalid encryption method in qcow header",
        HeaderError.InvalidSize => "Invalid qcow header: image size, cluster size, L2 table size or backing file name length out of range",
        HeaderError.InvalidOffset => "Invalid qcow header: a table or backing file offset is out of range",
        _ => "Invalid qcow header",
    };

    /// <summary>qemu keeps names as C strings, so an embedded NUL ends them.</summary>
    internal static int CStringLength(ReadOnlySpan<byte> bytes) => CString.Of(bytes).Length;

    /// <summary>Whether qemu's bdrv_pread accepts the range: offset and end within INT64_MAX.</summary>
    private static bool IsReadable(ulong offset, ulong length) =>
        offset <= long.MaxValue && length <= long.MaxValue - offset;

    [DoesNotReturn]
    private static void ThrowInvalid(HeaderError error, ReadOnlySpan<byte> data) =>
        throw new ImageFormatException(error, Describe(error, data));
}
