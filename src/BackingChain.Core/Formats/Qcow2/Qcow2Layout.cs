namespace BackingChain.Formats.Qcow2;

/// <summary>
/// Byte offsets, sizes and limits of the qcow2 header (docs/interop/qcow2.txt; limits from qemu 7.2's
/// block/qcow2.h). All numbers on disk are big-endian. Each offset follows from the previous field.
/// </summary>
internal static class Qcow2Layout
{
    /// <summary>Every incompatible-feature bit qemu 7.2 knows; any other bit set makes qemu refuse the image.</summary>
    public const Qcow2IncompatibleFeatures KnownIncompatibleFeatures =
        Qcow2IncompatibleFeatures.Dirty | Qcow2IncompatibleFeatures.Corrupt | Qcow2IncompatibleFeatures.ExternalDataFile
        | Qcow2IncompatibleFeatures.CompressionType | Qcow2IncompatibleFeatures.ExtendedL2;

    public const uint Magic = 0x514649FB; // "QFI\xFB"

    public const int MagicOffset = 0;
    public const int VersionOffset = MagicOffset + sizeof(uint);
    public const int BackingFileOffsetOffset = VersionOffset + sizeof(uint);
    public const int BackingFileSizeOffset = BackingFileOffsetOffset + sizeof(ulong);
    public const int ClusterBitsOffset = BackingFileSizeOffset + sizeof(uint);
    public const int SizeOffset = ClusterBitsOffset + sizeof(uint);
    public const int CryptMethodOffset = SizeOffset + sizeof(ulong);
    public const int L1SizeOffset = CryptMethodOffset + sizeof(uint);
    public const int L1TableOffsetOffset = L1SizeOffset + sizeof(uint);
    public const int RefcountTableOffsetOffset = L1TableOffsetOffset + sizeof(ulong);
    public const int RefcountTableClustersOffset = RefcountTableOffsetOffset + sizeof(ulong);
    public const int NbSnapshotsOffset = RefcountTableClustersOffset + sizeof(uint);
    public const int SnapshotsOffsetOffset = NbSnapshotsOffset + sizeof(uint);

    /// <summary>Length of the version 2 header, which is also where v3's additional fields start.</summary>
    public const int V2HeaderLength = SnapshotsOffsetOffset + sizeof(ulong); // 72

    public const int IncompatibleFeaturesOffset = V2HeaderLength;
    public const int CompatibleFeaturesOffset = IncompatibleFeaturesOffset + sizeof(ulong);
    public const int AutoclearFeaturesOffset = CompatibleFeaturesOffset + sizeof(ulong);
    public const int RefcountOrderOffset = AutoclearFeaturesOffset + sizeof(ulong);
    public const int HeaderLengthOffset = RefcountOrderOffset + sizeof(uint);

    /// <summary>The shortest header_length a v3 image may declare (fields up to header_length itself).</summary>
    public const int V3MinimumHeaderLength = HeaderLengthOffset + sizeof(uint); // 104

    public const int CompressionTypeOffset = V3MinimumHeaderLength;

    /// <summary>The header qemu writes and always reads: 104 bytes of fields, the compression type and 7 bytes of padding.</summary>
    public const int FullHeaderLength = 112;

    /// <summary>v2 implies refcount_order 4 (16-bit refcounts).</summary>
    public const uint V2RefcountOrder = 4;

    public const int MinClusterBits = 9;
    public const int MaxClusterBits = 21;

    /// <summary>Extended L2 entries split a cluster into 32 subclusters, each at least 512 bytes.</summary>
    public const int MinClusterBitsForExtendedL2 = 14;

    public const uint MaxRefcountOrder = 6;
    public const int MaxBackingFileNameLength = 1023;
    /// <summary>QCOW_MAX_SNAPSHOTS (block/qcow2.h): qemu refuses a header with more ("Too many snapshots").</summary>
    public const uint MaxSnapshots = 65536;

    /// <summary>
    /// QCOW_MAX_SNAPSHOTS_SIZE: 1 KiB per snapshot on average, 64 MiB for the whole table (entries, extra data,
    /// ids and names, each entry padded to 8). qemu refuses a longer table ("Snapshot table is too big"); the
    /// reader checks it before reading an entry's id and name, so it never holds more than this.
    /// </summary>
    public const long MaxSnapshotTableSize = 1024L * MaxSnapshots;

    /// <summary>QCOW_MAX_SNAPSHOT_EXTRA_DATA: extra data per snapshot entry ("Too much extra metadata in snapshot table entry N").</summary>
    public const uint MaxSnapshotExtraData = 1024;

    /// <summary>BME_MAX_NAME_SIZE (block/qcow2-bitmap.c): the longest bitmap name qemu accepts in a directory entry.</summary>
    public const int MaxBitmapNameSize = 1023;

    /// <summary>Size of the on-disk QCowSnapshotHeader before its extra data, id and name.</summary>
    public const int SnapshotHeaderSize = 40;

    public const long MaxL1TableBytes = 32L * 1024 * 1024;
    public const long MaxRefcountTableBytes = 8L * 1024 * 1024;
    public const int L1EntrySize = sizeof(ulong);
    public const int L2EntrySize = sizeof(ulong);
    public const int ExtendedL2EntrySize = 2 * sizeof(ulong);

    // Header extensions: u32 magic | u32 length | data | padding to 8.
    public const int ExtensionHeaderSize = 2 * sizeof(uint);
    public const int ExtensionAlignment = 8;

    public const uint ExtensionEnd = 0x00000000;
    public const uint ExtensionBackingFormat = 0xE2792ACA;
    public const uint ExtensionFeatureNameTable = 0x6803F857;
    public const uint ExtensionBitmaps = 0x23852875;
    public const uint ExtensionFullDiskEncryption = 0x0537BE77;
    public const uint ExtensionExternalDataFile = 0x44415441; // "DATA"

    /// <summary>qemu keeps the backing format in a 16-byte buffer, so the name must be shorter than 16.</summary>
    public const int BackingFormatBufferSize = 16;

    public const int BitmapsExtensionSize = 24;
    public const uint MaxBitmaps = 65535;
    public const ulong MaxBitmapDirectorySize = 1024UL * MaxBitmaps;
    public const int FullDiskEncryptionExtensionSize = 16;

    public const int FeatureNameEntrySize = 48;
    public const int FeatureNameLength = 46;
}
