namespace BackingChain.Formats.Qed;

/// <summary>
/// Byte offsets and limits of the QED header (qemu 7.2 block/qed.h, <c>QEDHeader</c>). All numbers on disk
/// are little-endian. Each offset follows from the previous field.
/// </summary>
internal static class QedLayout
{
    /// <summary>"QED\0" read as a little-endian u32.</summary>
    public const uint Magic = 0x00444551;

    public const int MagicOffset = 0;
    public const int ClusterSizeOffset = MagicOffset + sizeof(uint);
    public const int TableSizeOffset = ClusterSizeOffset + sizeof(uint);
    public const int HeaderSizeOffset = TableSizeOffset + sizeof(uint);
    public const int FeaturesOffset = HeaderSizeOffset + sizeof(uint);
    public const int CompatFeaturesOffset = FeaturesOffset + sizeof(ulong);
    public const int AutoclearFeaturesOffset = CompatFeaturesOffset + sizeof(ulong);
    public const int L1TableOffsetOffset = AutoclearFeaturesOffset + sizeof(ulong);
    public const int ImageSizeOffset = L1TableOffsetOffset + sizeof(ulong);
    public const int BackingFileNameOffsetOffset = ImageSizeOffset + sizeof(ulong);
    public const int BackingFileNameSizeOffset = BackingFileNameOffsetOffset + sizeof(uint);

    /// <summary>sizeof(QEDHeader): 64 bytes, also the probe's minimum buffer.</summary>
    public const int HeaderLength = BackingFileNameSizeOffset + sizeof(uint);

    /// <summary>QED_MIN_CLUSTER_SIZE and QED_MAX_CLUSTER_SIZE: 4 KiB to 64 MiB, a power of two.</summary>
    public const uint MinClusterSize = 4 * 1024;
    public const uint MaxClusterSize = 64 * 1024 * 1024;

    /// <summary>QED_MIN_TABLE_SIZE and QED_MAX_TABLE_SIZE, in clusters, a power of two.</summary>
    public const uint MinTableSize = 1;
    public const uint MaxTableSize = 16;

    public const int SectorSize = 512;
    public const int TableEntrySize = sizeof(ulong);

    /// <summary>qemu reads the name into its 4096-byte backing_file buffer and needs room for the NUL.</summary>
    public const uint BackingFilenameBufferSize = 4096;
}
