using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Qcow2.Qcow2Layout;

namespace BackingChain.Formats.Qcow2;

/// <summary>
/// A qcow2 (version 2 or 3) header with its header extensions, validated as qemu 7.2 validates it on open.
/// </summary>
/// <remarks>
/// Parsing allocates nothing: names (backing file, backing format, external data file) stay as ranges
/// into the buffer that was parsed, and are turned into strings only by the <c>Get…</c> methods, which
/// take that same buffer. Pass the image's first cluster, or the whole file when it is shorter.
/// </remarks>
public readonly struct Qcow2Header
{
    /// <summary>The format version: 2 (compat 0.10) or 3 (compat 1.1).</summary>
    public uint Version { get; internal init; }

    /// <summary>Offset of the backing file name in the file, or 0 when there is none.</summary>
    public ulong BackingFileOffset { get; internal init; }

    /// <summary>Length in bytes of the backing file name.</summary>
    public uint BackingFileSize { get; internal init; }

    /// <summary>log2 of the cluster size (9 to 21).</summary>
    public uint ClusterBits { get; internal init; }

    /// <summary>The virtual size field, in bytes, as stored.</summary>
    internal ulong Size { get; init; }

    /// <summary>The encryption method.</summary>
    public Qcow2EncryptionMethod CryptMethod { get; internal init; }

    /// <summary>Number of entries of the active L1 table.</summary>
    public uint L1Size { get; internal init; }

    /// <summary>Offset of the active L1 table.</summary>
    public ulong L1TableOffset { get; internal init; }

    /// <summary>Offset of the refcount table.</summary>
    public ulong RefcountTableOffset { get; internal init; }

    /// <summary>Number of clusters the refcount table occupies.</summary>
    public uint RefcountTableClusters { get; internal init; }

    /// <summary>Number of internal snapshots.</summary>
    public uint NbSnapshots { get; internal init; }

    /// <summary>Offset of the snapshot table.</summary>
    public ulong SnapshotsOffset { get; internal init; }

    /// <summary>Incompatible feature bits (v3; 0 for v2).</summary>
    public Qcow2IncompatibleFeatures IncompatibleFeatures { get; internal init; }

    /// <summary>Compatible feature bits (v3; 0 for v2).</summary>
    public Qcow2CompatibleFeatures CompatibleFeatures { get; internal init; }

    /// <summary>Autoclear feature bits (v3; 0 for v2).</summary>
    public Qcow2AutoclearFeatures AutoclearFeatures { get; internal init; }

    /// <summary>log2 of the refcount width in bits (4 for v2).</summary>
    public uint RefcountOrder { get; internal init; }

    /// <summary>Length of the header proper; header extensions start here (72 for v2).</summary>
    public uint HeaderLength { get; internal init; }

    /// <summary>The compression type (zlib for v2 and for short v3 headers).</summary>
    public Qcow2CompressionType CompressionType { get; internal init; }

    /// <summary>Where the backing file name lies in the parsed buffer (empty when there is none).</summary>
    internal Range BackingFileNameRange { get; init; }

    /// <summary>Where the backing format name (extension 0xE2792ACA) lies in the parsed buffer, if present.</summary>
    internal Range BackingFormatRange { get; init; }

    /// <summary>Where the external data file name (extension "DATA") lies in the parsed buffer, if present.</summary>
    internal Range ExternalDataFileRange { get; init; }

    /// <summary>Where the feature name table (extension 0x6803F857) lies in the parsed buffer, if present.</summary>
    internal Range FeatureNameTableRange { get; init; }

    /// <summary>Whether the backing format extension is present.</summary>
    internal bool HasBackingFormat { get; init; }

    /// <summary>Whether the external data file extension is present.</summary>
    internal bool HasExternalDataFileName { get; init; }

    /// <summary>Whether a bitmaps extension was read (it is ignored unless autoclear bit 0 is set, as qemu does).</summary>
    internal bool HasBitmapsExtension { get; init; }

    /// <summary>Number of persistent bitmaps (bitmaps extension).</summary>
    internal uint NbBitmaps { get; init; }

    /// <summary>Size of the bitmap directory (bitmaps extension).</summary>
    internal ulong BitmapDirectorySize { get; init; }

    /// <summary>Offset of the bitmap directory (bitmaps extension).</summary>
    internal ulong BitmapDirectoryOffset { get; init; }

    /// <summary>Whether the full-disk-encryption header pointer extension is present.</summary>
    internal bool HasEncryptionHeader { get; init; }

    /// <summary>Offset of the LUKS header area (full-disk-encryption extension).</summary>
    internal ulong EncryptionHeaderOffset { get; init; }

    /// <summary>Length of the LUKS header area (full-disk-encryption extension).</summary>
    internal ulong EncryptionHeaderLength { get; init; }

    /// <summary>Number of header extensions with a magic qemu 7.2 does not know (kept, not interpreted).</summary>
    internal int UnknownExtensionCount { get; init; }

    /// <summary>The cluster size in bytes.</summary>
    public int ClusterSize => 1 << (int)ClusterBits;

    /// <summary>The virtual size qemu reports: the header's <c>size</c> field rounded down to whole 512-byte sectors.</summary>
    public ulong VirtualSize => Size & ~511UL;

    /// <summary>Whether the image names a backing file (an empty name counts as none, as in qemu).</summary>
    internal bool HasBackingFile => BackingFileNameRange.End.Value > BackingFileNameRange.Start.Value;

    /// <summary>The refcount width in bits.</summary>
    internal int RefcountBits => 1 << (int)RefcountOrder;

    /// <summary>Whether the dirty bit is set.</summary>
    internal bool IsDirty => (IncompatibleFeatures & Qcow2IncompatibleFeatures.Dirty) != 0;

    /// <summary>Whether the corrupt bit is set.</summary>
    internal bool IsCorrupt => (IncompatibleFeatures & Qcow2IncompatibleFeatures.Corrupt) != 0;

    /// <summary>Whether guest data lives in an external data file (incompatible bit 2).</summary>
    internal bool HasExternalDataFile => (IncompatibleFeatures & Qcow2IncompatibleFeatures.ExternalDataFile) != 0;

    /// <summary>Whether L2 entries are extended (subclusters).</summary>
    internal bool HasExtendedL2 => (IncompatibleFeatures & Qcow2IncompatibleFeatures.ExtendedL2) != 0;

    /// <summary>Whether lazy refcounts are enabled.</summary>
    internal bool HasLazyRefcounts => (CompatibleFeatures & Qcow2CompatibleFeatures.LazyRefcounts) != 0;

    /// <summary>Whether the external data file is a valid raw image (autoclear bit 1).</summary>
    internal bool IsExternalDataRaw => (AutoclearFeatures & Qcow2AutoclearFeatures.RawExternalData) != 0;

    /// <summary>Whether the bitmaps extension is consistent (autoclear bit 0).</summary>
    internal bool HasConsistentBitmaps => (AutoclearFeatures & Qcow2AutoclearFeatures.Bitmaps) != 0;

    /// <summary>Decodes the backing file name from the buffer that was parsed.</summary>
    /// <param name="data">The same buffer given to <see cref="TryParse(ReadOnlySpan{byte}, out Qcow2Header, out HeaderError)"/>.</param>
    /// <returns>The stored name, or <see langword="null"/> when there is none.</returns>
    /// <exception cref="ImageFormatException"><see cref="HeaderError.InvalidText"/> when the stored bytes are not valid UTF-8: a name is never decoded lossily, so that it cannot mean another file than the one qemu opens.</exception>
    public string? GetBackingFileName(ReadOnlySpan<byte> data) =>
        HasBackingFile ? CString.ToName(data[BackingFileNameRange], "backing file name") : null;

    /// <summary>Decodes the backing format name (for example <c>"raw"</c>), or <see langword="null"/> when none is recorded.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <returns>The recorded backing format, or <see langword="null"/>.</returns>
    /// <exception cref="ImageFormatException"><see cref="HeaderError.InvalidText"/> when the stored bytes are not valid UTF-8: a name is never decoded lossily, so that it cannot mean another file than the one qemu opens.</exception>
    public string? GetBackingFormat(ReadOnlySpan<byte> data) =>
        HasBackingFormat ? CString.ToFormatName(data[BackingFormatRange], "backing file format") : null;

    /// <summary>Decodes the external data file name, or <see langword="null"/> when the extension is absent.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <returns>The stored data file name, or <see langword="null"/>.</returns>
    /// <exception cref="ImageFormatException"><see cref="HeaderError.InvalidText"/> when the stored bytes are not valid UTF-8: a name is never decoded lossily, so that it cannot mean another file than the one qemu opens.</exception>
    public string? GetExternalDataFileName(ReadOnlySpan<byte> data) =>
        HasExternalDataFileName ? CString.ToName(data[ExternalDataFileRange], "data file name") : null;

    /// <summary>Parses a qcow2 header; never throws for bad data.</summary>
    /// <param name="data">The image's first cluster, or the whole file when it is shorter.</param>
    /// <param name="header">The header, when parsing succeeded.</param>
    /// <param name="error">What is wrong, when it did not.</param>
    /// <returns><see langword="true"/> when the header is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out Qcow2Header header, out HeaderError error)
    {
        error = Read(data, dataReachesEndOfFile: false, out header, out _);
        return error == HeaderError.None;
    }

    /// <summary>
    /// Parses a qcow2 header, and when <paramref name="data"/> stops before something the header points at (the
    /// header extensions, the backing file name), says how many bytes from the start of the file the parse needs.
    /// Read that many and call again: a header whose backing name lies beyond what was read takes two calls.
    /// </summary>
    /// <param name="data">The first bytes of the image.</param>
    /// <param name="header">The header, when parsing succeeded.</param>
    /// <param name="error">What is wrong, when it did not; <see cref="HeaderError.Truncated"/> when more bytes are needed.</param>
    /// <param name="bytesNeeded">
    /// With <see cref="HeaderError.Truncated"/>, the length of data (counted from the start of the file) the next call
    /// needs, always more than <paramref name="data"/> holds; otherwise 0. A file shorter than that is truncated.
    /// </param>
    /// <returns><see langword="true"/> when the header is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out Qcow2Header header, out HeaderError error, out int bytesNeeded)
    {
        error = Read(data, dataReachesEndOfFile: false, out header, out int required);
        bytesNeeded = error == HeaderError.Truncated && required > data.Length ? required : 0;
        return error == HeaderError.None;
    }

    /// <summary>Parses a qcow2 header.</summary>
    /// <param name="data">The image's first cluster, or the whole file when it is shorter.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid qcow2 header.</exception>
    public static Qcow2Header Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, dataReachesEndOfFile: false, out Qcow2Header header, out _);
        if (error != HeaderError.None)
        {
            ThrowInvalid(error, data);
        }

        return header;
    }

    /// <summary>
    /// The one parsing core. When the buffer stops before a structure the header points at, it returns
    /// <see cref="HeaderError.Truncated"/> with the length it needs. When the buffer is the whole file, only
    /// the fixed header may run past its end (read as zeros, as qemu's short read does); a backing name or
    /// an extension cut by the end of the file stays truncated, where qemu would invent zeros.
    /// </summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, bool dataReachesEndOfFile, out Qcow2Header header, out int requiredLength)
    {
        if (data.Length >= FullHeaderLength)
        {
            return ReadCore(data, data, dataReachesEndOfFile, out header, out requiredLength);
        }

        if (data.Length < V2HeaderLength && !dataReachesEndOfFile)
        {
            header = default;
            requiredLength = FullHeaderLength;
            return HeaderError.Truncated;
        }

        // qemu reads a fixed 112-byte structure; a short file reads as zeros past its end.
        Span<byte> fixedHeader = stackalloc byte[FullHeaderLength];
        fixedHeader.Clear();
        data.CopyTo(fixedHeader);
        return ReadCore(fixedHeader, data, dataReachesEndOfFile, out header, out requiredLength);
    }

    /// <summary>
    /// Parses <paramref name="fixedHeader"/> (at least <see cref="FullHeaderLength"/> bytes: the data itself, or
    /// its zero-padded copy) and the extensions and backing name in <paramref name="data"/>. Each step is one group
    /// of qemu 7.2's <c>qcow2_do_open</c> checks, in qemu's order, so the first failure is the one qemu reports. The
    /// header is built once, at the end: it is large, and copying it per step cost more than the rest of the parse.
    /// </summary>
    private static HeaderError ReadCore(ReadOnlySpan<byte> fixedHeader, ReadOnlySpan<byte> data, bool dataReachesEndOfFile, out Qcow2Header header, out int requiredLength)
    {
        header = default;
        requiredLength = FullHeaderLength;
        HeaderError error = ReadFixedFields(fixedHeader, out FixedFields fields);
        if (error == HeaderError.None)
        {
            error = CheckClusterAndHeaderLength(fixedHeader, ref fields);
        }

        if (error == HeaderError.None)
        {
            error = CheckFeatures(in fields, out header);
        }

        if (error == HeaderError.None)
        {
            error = CheckTables(in fields);
        }

        if (error != HeaderError.None)
        {
            return error;
        }

        // Header extensions run from header_length to the backing name, or to the end of cluster 0.
        int extensionsEnd = fields.BackingFileOffset != 0 ? (int)fields.BackingFileOffset : (int)fields.ClusterSize;
        bool bitmapsConsistent = fields.Version >= 3 && (fields.Autoclear & (ulong)Qcow2AutoclearFeatures.Bitmaps) != 0;
        var extensions = default(Extensions);
        error = ReadExtensions(
            data, dataReachesEndOfFile, (int)fields.HeaderLength, extensionsEnd, bitmapsConsistent, fields.CryptMethod == (uint)Qcow2EncryptionMethod.Luks, fields.ClusterSize, ref extensions, out requiredLength);
        if (error != HeaderError.None)
        {
            return error;
        }

        error = FindBackingFileName(data, in fields, out Range backingFileNameRange, out requiredLength);
        if (error != HeaderError.None)
        {
            return error;
        }

        header = Build(in fields, in extensions, backingFileNameRange);
        requiredLength = 0;
        return HeaderError.None;
    }

    /// <summary>The fixed header's fields, gathered before the header is built.</summary>
    private struct FixedFields
    {
        public uint Version;
        public ulong BackingFileOffset;
        public uint BackingFileSize;
        public uint ClusterBits;
        public uint ClusterSize;
        public ulong Size;
        public uint CryptMethod;
        public uint L1Size;
        public ulong L1TableOffset;
        public ulong RefcountTableOffset;
        public uint RefcountTableClusters;
        public uint NbSnapshots;
        public ulong SnapshotsOffset;
        public ulong Incompatible;
        public ulong Compatible;
        public ulong Autoclear;
        public uint RefcountOrder;
        public uint HeaderLength;
        public byte CompressionType;
    }

    /// <summary>The magic and the version, then the fields: version 2 has no feature words and fixed defaults for the rest.</summary>
    private static HeaderError ReadFixedFields(ReadOnlySpan<byte> fixedHeader, out FixedFields fields)
    {
        fields = default;
        if (BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[MagicOffset..]) != Magic)
        {
            return HeaderError.BadMagic;
        }

        uint version = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[VersionOffset..]);
        if (version is < 2 or > 3)
        {
            return HeaderError.UnsupportedVersion;
        }

        fields.Version = version;
        fields.BackingFileOffset = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[BackingFileOffsetOffset..]);
        fields.BackingFileSize = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[BackingFileSizeOffset..]);
        fields.ClusterBits = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[ClusterBitsOffset..]);
        fields.Size = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[SizeOffset..]);
        fields.CryptMethod = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[CryptMethodOffset..]);
        fields.L1Size = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[L1SizeOffset..]);
        fields.L1TableOffset = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[L1TableOffsetOffset..]);
        fields.RefcountTableOffset = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[RefcountTableOffsetOffset..]);
        fields.RefcountTableClusters = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[RefcountTableClustersOffset..]);
        fields.NbSnapshots = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[NbSnapshotsOffset..]);
        fields.SnapshotsOffset = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[SnapshotsOffsetOffset..]);
        fields.RefcountOrder = V2RefcountOrder;
        fields.HeaderLength = V2HeaderLength;
        if (version == 3)
        {
            fields.Incompatible = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[IncompatibleFeaturesOffset..]);
            fields.Compatible = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[CompatibleFeaturesOffset..]);
            fields.Autoclear = BinaryPrimitives.ReadUInt64BigEndian(fixedHeader[AutoclearFeaturesOffset..]);
            fields.RefcountOrder = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[RefcountOrderOffset..]);
            fields.HeaderLength = BinaryPrimitives.ReadUInt32BigEndian(fixedHeader[HeaderLengthOffset..]);
        }

        return HeaderError.None;
    }

    /// <summary>The cluster size, the header length it bounds, and the backing name's offset within cluster 0.</summary>
    private static HeaderError CheckClusterAndHeaderLength(ReadOnlySpan<byte> fixedHeader, ref FixedFields fields)
    {
        // "Unsupported cluster size: 2^N"
        if (fields.ClusterBits is < MinClusterBits or > MaxClusterBits)
        {
            return HeaderError.InvalidSize;
        }

        fields.ClusterSize = 1u << (int)fields.ClusterBits;

        // "qcow2 header too short" / "qcow2 header exceeds cluster size"
        if (fields.HeaderLength < (fields.Version == 3 ? V3MinimumHeaderLength : V2HeaderLength) || fields.HeaderLength > fields.ClusterSize)
        {
            return HeaderError.InvalidSize;
        }

        // The compression type byte exists only in headers long enough to hold it; shorter ones mean zlib.
        if (fields.HeaderLength > CompressionTypeOffset)
        {
            fields.CompressionType = fixedHeader[CompressionTypeOffset];
        }

        // "Invalid backing file offset"
        if (fields.BackingFileOffset > fields.ClusterSize)
        {
            return HeaderError.InvalidOffset;
        }

        return HeaderError.None;
    }

    /// <summary>
    /// The feature words and what they select: unknown incompatible bits, the refcount width, the encryption method,
    /// the compression type, extended L2 entries, and the autoclear bit that needs an external data file. An unknown
    /// feature returns a header holding the bits, so the message can name them.
    /// </summary>
    private static HeaderError CheckFeatures(in FixedFields fields, out Qcow2Header header)
    {
        header = default;
        ulong incompatible = fields.Incompatible;

        // "Unsupported qcow2 feature(s): ..."
        if ((incompatible & ~(ulong)Qcow2Layout.KnownIncompatibleFeatures) != 0)
        {
            header = new Qcow2Header { Version = fields.Version, IncompatibleFeatures = (Qcow2IncompatibleFeatures)incompatible };
            return HeaderError.UnsupportedFeature;
        }

        // "Reference count entry width too large; may not exceed 64 bits"
        if (fields.RefcountOrder > MaxRefcountOrder)
        {
            return HeaderError.InvalidSize;
        }

        // "Unsupported encryption method: N"
        if (fields.CryptMethod > (uint)Qcow2EncryptionMethod.Luks)
        {
            return HeaderError.UnsupportedFeature;
        }

        // validate_compression_type: only zlib and zstd, and feature bit 3 set exactly when not zlib.
        bool compressionBit = (incompatible & (ulong)Qcow2IncompatibleFeatures.CompressionType) != 0;
        if (fields.CompressionType > (byte)Qcow2CompressionType.Zstd)
        {
            return HeaderError.UnsupportedFeature;
        }

        if (compressionBit != (fields.CompressionType != (byte)Qcow2CompressionType.Zlib))
        {
            return HeaderError.Inconsistent;
        }

        // Subclusters (cluster/32) must be at least 512 bytes.
        if (UsesExtendedL2(in fields) && fields.ClusterBits < MinClusterBitsForExtendedL2)
        {
            return HeaderError.InvalidSize;
        }

        return HeaderError.None;
    }

    private static bool UsesExtendedL2(in FixedFields fields) => (fields.Incompatible & (ulong)Qcow2IncompatibleFeatures.ExtendedL2) != 0;

    /// <summary>
    /// The metadata tables the header points at: the refcount table, the snapshot table and the active L1 table,
    /// each within its size limit, cluster-aligned and inside the addressable range; the L1 table large enough for
    /// the virtual size. Then the autoclear bit that needs an external data file, which qemu checks after them.
    /// </summary>
    private static HeaderError CheckTables(in FixedFields fields)
    {
        uint clusterSize = fields.ClusterSize;

        // "Image does not contain a reference count table" / "Reference count table too large"
        if (fields.RefcountTableClusters == 0 || fields.RefcountTableClusters > (ulong)(MaxRefcountTableBytes >> (int)fields.ClusterBits))
        {
            return HeaderError.InvalidSize;
        }

        if (!IsValidTable(fields.RefcountTableOffset, fields.RefcountTableClusters, clusterSize, clusterSize))
        {
            return HeaderError.InvalidOffset;
        }

        // "Too many snapshots" / "Invalid snapshot table offset"
        if (fields.NbSnapshots > MaxSnapshots)
        {
            return HeaderError.InvalidSize;
        }

        if (!IsValidTable(fields.SnapshotsOffset, fields.NbSnapshots, SnapshotHeaderSize, clusterSize))
        {
            return HeaderError.InvalidOffset;
        }

        // "Active L1 table too large" / "L1 table is too small" / "Image is too big"
        if (fields.L1Size > MaxL1TableBytes / L1EntrySize)
        {
            return HeaderError.InvalidSize;
        }

        int l2Bits = (int)fields.ClusterBits - (UsesExtendedL2(in fields) ? 4 : 3);
        int bytesPerL1EntryBits = (int)fields.ClusterBits + l2Bits;
        ulong size = fields.Size;
        ulong l1Needed = (size >> bytesPerL1EntryBits) + ((size & ((1UL << bytesPerL1EntryBits) - 1)) != 0 ? 1UL : 0UL);
        if (l1Needed > int.MaxValue)
        {
            return HeaderError.InvalidSize;
        }

        if (fields.L1Size < l1Needed)
        {
            return HeaderError.InvalidSize;
        }

        if (!IsValidTable(fields.L1TableOffset, fields.L1Size, L1EntrySize, clusterSize))
        {
            return HeaderError.InvalidOffset;
        }

        // "data-file-raw requires a data file"
        if ((fields.Autoclear & (ulong)Qcow2AutoclearFeatures.RawExternalData) != 0
            && (fields.Incompatible & (ulong)Qcow2IncompatibleFeatures.ExternalDataFile) == 0)
        {
            return HeaderError.Inconsistent;
        }

        return HeaderError.None;
    }

    /// <summary>The backing name: bounded by qemu's limit and cluster 0, and within the data (else the length it needs).</summary>
    private static HeaderError FindBackingFileName(ReadOnlySpan<byte> data, in FixedFields fields, out Range range, out int requiredLength)
    {
        range = default;
        requiredLength = 0;
        if (fields.BackingFileOffset == 0)
        {
            return HeaderError.None;
        }

        // "Backing file name too long"
        if (fields.BackingFileSize > Math.Min(MaxBackingFileNameLength, fields.ClusterSize - (uint)fields.BackingFileOffset))
        {
            return HeaderError.InvalidSize;
        }

        int nameStart = (int)fields.BackingFileOffset;
        int nameEnd = nameStart + (int)fields.BackingFileSize;
        if (nameEnd > data.Length)
        {
            requiredLength = nameEnd;
            return HeaderError.Truncated;
        }

        range = new Range(nameStart, CStringEnd(data, nameStart, nameEnd));
        return HeaderError.None;
    }

    private static Qcow2Header Build(in FixedFields fields, in Extensions extensions, Range backingFileNameRange) => new()
    {
        Version = fields.Version,
        BackingFileOffset = fields.BackingFileOffset,
        BackingFileSize = fields.BackingFileSize,
        ClusterBits = fields.ClusterBits,
        Size = fields.Size,
        CryptMethod = (Qcow2EncryptionMethod)fields.CryptMethod,
        L1Size = fields.L1Size,
        L1TableOffset = fields.L1TableOffset,
        RefcountTableOffset = fields.RefcountTableOffset,
        RefcountTableClusters = fields.RefcountTableClusters,
        NbSnapshots = fields.NbSnapshots,
        SnapshotsOffset = fields.SnapshotsOffset,
        IncompatibleFeatures = (Qcow2IncompatibleFeatures)fields.Incompatible,
        CompatibleFeatures = (Qcow2CompatibleFeatures)fields.Compatible,
        AutoclearFeatures = (Qcow2AutoclearFeatures)fields.Autoclear,
        RefcountOrder = fields.RefcountOrder,
        HeaderLength = fields.HeaderLength,
        CompressionType = (Qcow2CompressionType)fields.CompressionType,
        BackingFileNameRange = backingFileNameRange,
        BackingFormatRange = extensions.BackingFormatRange,
        HasBackingFormat = extensions.HasBackingFormat,
        ExternalDataFileRange = extensions.ExternalDataFileRange,
        HasExternalDataFileName = extensions.HasExternalDataFileName,
        FeatureNameTableRange = extensions.FeatureNameTableRange,
        HasBitmapsExtension = extensions.HasBitmapsExtension,
        NbBitmaps = extensions.NbBitmaps,
        BitmapDirectorySize = extensions.BitmapDirectorySize,
        BitmapDirectoryOffset = extensions.BitmapDirectoryOffset,
        HasEncryptionHeader = extensions.HasEncryptionHeader,
        EncryptionHeaderOffset = extensions.EncryptionHeaderOffset,
        EncryptionHeaderLength = extensions.EncryptionHeaderLength,
        UnknownExtensionCount = extensions.UnknownCount,
    };

    /// <summary>What the header extensions say, gathered before the header is built.</summary>
    private struct Extensions
    {
        public Range BackingFormatRange;
        public bool HasBackingFormat;
        public Range ExternalDataFileRange;
        public bool HasExternalDataFileName;
        public Range FeatureNameTableRange;
        public bool HasBitmapsExtension;
        public uint NbBitmaps;
        public ulong BitmapDirectorySize;
        public ulong BitmapDirectoryOffset;
        public bool HasEncryptionHeader;
        public ulong EncryptionHeaderOffset;
        public ulong EncryptionHeaderLength;
        public int UnknownCount;
    }

    private static HeaderError ReadExtensions(
        ReadOnlySpan<byte> data, bool dataReachesEndOfFile, int offset, int end, bool bitmapsConsistent, bool luksEncrypted, uint clusterSize, ref Extensions found, out int requiredLength)
    {
        requiredLength = 0;
        int unknown = 0;
        uint seen = 0;
        while (offset < end)
        {
            if (offset + ExtensionHeaderSize > data.Length)
            {
                // qemu would read zeros past the end of the file and call it the end marker; a file cut
                // inside its own header region is truncated, and we say so.
                requiredLength = offset + ExtensionHeaderSize;
                return HeaderError.Truncated;
            }

            uint magic = BinaryPrimitives.ReadUInt32BigEndian(data[offset..]);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data[(offset + sizeof(uint))..]);
            offset += ExtensionHeaderSize;

            // "Header extension too large"
            if (offset > end || length > (uint)(end - offset))
            {
                return HeaderError.InvalidExtension;
            }

            if (magic == ExtensionEnd)
            {
                break;
            }

            int dataEnd = offset + (int)length;
            if (dataEnd > data.Length && (magic != ExtensionFeatureNameTable || dataReachesEndOfFile))
            {
                requiredLength = dataEnd;
                return HeaderError.Truncated;
            }

            // The spec allows each extension type at most once; qemu silently keeps the last one, which lets
            // two readers of the same image disagree. A repeated known extension is malformed.
            uint seenBit = KnownExtensionBit(magic);
            if ((seen & seenBit) != 0)
            {
                return HeaderError.InvalidExtension;
            }

            seen |= seenBit;

            switch (magic)
            {
                case ExtensionBackingFormat:
                    // "ext_backing_format: len=N too large (>=16)"
                    if (length >= BackingFormatBufferSize)
                    {
                        return HeaderError.InvalidExtension;
                    }

                    found.HasBackingFormat = true;
                    found.BackingFormatRange = new Range(offset, CStringEnd(data, offset, dataEnd));
                    break;

                case ExtensionFeatureNameTable:
                    // Only used to word error messages; it may be longer than what the caller read.
                    found.FeatureNameTableRange = new Range(offset, Math.Min(dataEnd, data.Length));
                    break;

                case ExtensionBitmaps:
                    // qemu ignores the extension (with a warning) unless autoclear bit 0 says it is consistent,
                    // and ignores it in v2 images.
                    if (bitmapsConsistent && ReadBitmapsExtension(data[offset..dataEnd], clusterSize, ref found) != HeaderError.None)
                    {
                        return HeaderError.InvalidExtension;
                    }

                    break;

                case ExtensionFullDiskEncryption:
                    // "CRYPTO header extension only expected with LUKS encryption method".
                    if (!luksEncrypted || ReadEncryptionExtension(data[offset..dataEnd], clusterSize, ref found) != HeaderError.None)
                    {
                        return HeaderError.InvalidExtension;
                    }

                    break;

                case ExtensionExternalDataFile:
                    found.HasExternalDataFileName = true;
                    found.ExternalDataFileRange = new Range(offset, CStringEnd(data, offset, dataEnd));
                    break;

                default:
                    unknown++;
                    break;
            }

            // The payload is padded to a multiple of 8; the padding may run past 'end' (qemu then stops the loop).
            long next = offset + (((long)length + (ExtensionAlignment - 1)) & ~(long)(ExtensionAlignment - 1));
            offset = next > end ? end : (int)next;
        }

        found.UnknownCount = unknown;
        return HeaderError.None;
    }

    /// <summary>The bit that marks an extension type as seen; 0 for a type this parser does not know.</summary>
    private static uint KnownExtensionBit(uint magic) => magic switch
    {
        ExtensionBackingFormat => 1u,
        ExtensionFeatureNameTable => 2u,
        ExtensionBitmaps => 4u,
        ExtensionFullDiskEncryption => 8u,
        ExtensionExternalDataFile => 16u,
        _ => 0u,
    };

    /// <summary>
    /// qemu's checks of the bitmaps extension (qcow2_read_extensions): 24 bytes, the reserved word zero, 1 to 65,535
    /// bitmaps, a directory of at most 64 MiB at a cluster-aligned offset.
    /// </summary>
    private static HeaderError ReadBitmapsExtension(ReadOnlySpan<byte> payload, uint clusterSize, ref Extensions found)
    {
        if (payload.Length != BitmapsExtensionSize)
        {
            return HeaderError.InvalidExtension;
        }

        uint nbBitmaps = BinaryPrimitives.ReadUInt32BigEndian(payload);
        uint reserved = BinaryPrimitives.ReadUInt32BigEndian(payload[sizeof(uint)..]);
        ulong directorySize = BinaryPrimitives.ReadUInt64BigEndian(payload[(2 * sizeof(uint))..]);
        ulong directoryOffset = BinaryPrimitives.ReadUInt64BigEndian(payload[(2 * sizeof(uint) + sizeof(ulong))..]);
        if (reserved != 0 || nbBitmaps == 0 || nbBitmaps > MaxBitmaps
            || directorySize > MaxBitmapDirectorySize
            || (directoryOffset & (clusterSize - 1)) != 0)
        {
            return HeaderError.InvalidExtension;
        }

        found.HasBitmapsExtension = true;
        found.NbBitmaps = nbBitmaps;
        found.BitmapDirectorySize = directorySize;
        found.BitmapDirectoryOffset = directoryOffset;
        return HeaderError.None;
    }

    /// <summary>
    /// qemu's checks of the full-disk-encryption extension: 16 bytes, a cluster-aligned LUKS header offset, and an
    /// offset and length that do not overflow.
    /// </summary>
    private static HeaderError ReadEncryptionExtension(ReadOnlySpan<byte> payload, uint clusterSize, ref Extensions found)
    {
        if (payload.Length != FullDiskEncryptionExtensionSize)
        {
            return HeaderError.InvalidExtension;
        }

        ulong encryptionOffset = BinaryPrimitives.ReadUInt64BigEndian(payload);
        ulong encryptionLength = BinaryPrimitives.ReadUInt64BigEndian(payload[sizeof(ulong)..]);
        if ((encryptionOffset & (clusterSize - 1)) != 0
            || encryptionOffset > long.MaxValue || encryptionLength > long.MaxValue - encryptionOffset)
        {
            return HeaderError.InvalidExtension;
        }

        found.HasEncryptionHeader = true;
        found.EncryptionHeaderOffset = encryptionOffset;
        found.EncryptionHeaderLength = encryptionLength;
        return HeaderError.None;
    }

    /// <summary>qemu's validate_table_offset: no overflow of offset + size, and cluster aligned.</summary>
    private static bool IsValidTable(ulong offset, ulong entries, ulong entrySize, uint clusterSize)
    {
        if (entries > long.MaxValue / entrySize)
        {
            return false;
        }

        ulong size = entries * entrySize;
        if (offset > long.MaxValue || long.MaxValue - (long)size < (long)offset)
        {
            return false;
        }

        return (offset & (clusterSize - 1)) == 0;
    }

    /// <summary>qemu keeps names as C strings, so an embedded NUL ends them.</summary>
    private static int CStringEnd(ReadOnlySpan<byte> data, int start, int end) =>
        start + CString.Of(data[start..end]).Length;

    [DoesNotReturn]
    private static void ThrowInvalid(HeaderError error, ReadOnlySpan<byte> data) =>
        throw new ImageFormatException(error, Qcow2Messages.Describe(error, data));
}
