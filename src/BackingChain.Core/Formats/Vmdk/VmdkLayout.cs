namespace BackingChain.Formats.Vmdk;

/// <summary>
/// Byte offsets and limits of VMDK structures as qemu 7.2's block/vmdk.c reads them: the hosted sparse
/// header "KDMV" (VMDK4Header), the legacy "COWD" header (VMDK3Header), the ESXi seSparse headers, and
/// the text descriptor. Magics are big-endian; every other field is little-endian.
/// </summary>
internal static class VmdkLayout
{
    public const int SectorSize = 512;
    public const int SectorShift = 9;

    /// <summary>"KDMV" read as a big-endian u32.</summary>
    public const uint Vmdk4Magic = 0x4B444D56;

    /// <summary>"COWD" read as a big-endian u32.</summary>
    public const uint Vmdk3Magic = 0x434F5744;

    // VMDK4Header, following the 4-byte magic.
    public const int MagicOffset = 0;
    public const int VersionOffset = MagicOffset + sizeof(uint);
    public const int FlagsOffset = VersionOffset + sizeof(uint);
    public const int CapacityOffset = FlagsOffset + sizeof(uint);
    public const int GranularityOffset = CapacityOffset + sizeof(ulong);
    public const int DescOffsetOffset = GranularityOffset + sizeof(ulong);
    public const int DescSizeOffset = DescOffsetOffset + sizeof(ulong);
    public const int NumGtesPerGtOffset = DescSizeOffset + sizeof(ulong);
    public const int RgdOffsetOffset = NumGtesPerGtOffset + sizeof(uint);
    public const int GdOffsetOffset = RgdOffsetOffset + sizeof(ulong);
    public const int GrainOffsetOffset = GdOffsetOffset + sizeof(ulong);
    public const int UncleanShutdownOffset = GrainOffsetOffset + sizeof(ulong);
    public const int CheckBytesOffset = UncleanShutdownOffset + sizeof(byte);
    public const int CompressAlgorithmOffset = CheckBytesOffset + 4;

    /// <summary>Magic plus VMDK4Header: 79 bytes.</summary>
    public const int Vmdk4HeaderLength = CompressAlgorithmOffset + sizeof(ushort);

    public const uint MaxVersion = 3;
    public const uint FlagNewLineDetection = 1 << 0;
    public const uint FlagRedundantGrainTable = 1 << 1;
    public const uint FlagZeroedGrain = 1 << 2;
    public const uint FlagCompressed = 1 << 16;
    public const uint FlagMarkers = 1 << 17;
    public const ushort CompressionDeflate = 1;

    /// <summary>gd_offset meaning "the grain directory, and the real header, are in the footer".</summary>
    public const ulong GdAtEnd = ulong.MaxValue;

    /// <summary>"L2 table size too big".</summary>
    public const uint MaxGtesPerGt = 512;

    /// <summary>"Invalid granularity, image may be corrupt": a grain of 1 GiB is unrealistic.</summary>
    public const ulong MaxGranularitySectors = 0x200000;

    /// <summary>"L1 size too big": qemu caps the grain directory at 32 Mi entries.</summary>
    public const ulong MaxL1Entries = 32 * 1024 * 1024;

    /// <summary>The stream-optimized footer: footer marker sector, header sector, end-of-stream marker sector.</summary>
    public const int FooterLength = 3 * SectorSize;

    /// <summary>Where the footer starts, counted back from the (sector-rounded) end of the file.</summary>
    public const int FooterDistanceFromEnd = FooterLength;

    // A marker: u64 value, u32 size, u32 type.
    public const int MarkerValueOffset = 0;
    public const int MarkerSizeOffset = MarkerValueOffset + sizeof(ulong);
    public const int MarkerTypeOffset = MarkerSizeOffset + sizeof(uint);
    public const uint MarkerEndOfStream = 0;
    public const uint MarkerFooter = 3;

    // VMDK3Header ("COWD"), following the magic; all u32.
    public const int Vmdk3VersionOffset = sizeof(uint);
    public const int Vmdk3FlagsOffset = Vmdk3VersionOffset + sizeof(uint);
    public const int Vmdk3DiskSectorsOffset = Vmdk3FlagsOffset + sizeof(uint);
    public const int Vmdk3GranularityOffset = Vmdk3DiskSectorsOffset + sizeof(uint);
    public const int Vmdk3L1DirOffsetOffset = Vmdk3GranularityOffset + sizeof(uint);
    public const int Vmdk3L1DirSizeOffset = Vmdk3L1DirOffsetOffset + sizeof(uint);
    public const int Vmdk3FileSectorsOffset = Vmdk3L1DirSizeOffset + sizeof(uint);
    public const int Vmdk3CylindersOffset = Vmdk3FileSectorsOffset + sizeof(uint);
    public const int Vmdk3HeadsOffset = Vmdk3CylindersOffset + sizeof(uint);
    public const int Vmdk3SectorsPerTrackOffset = Vmdk3HeadsOffset + sizeof(uint);
    public const int Vmdk3HeaderLength = Vmdk3SectorsPerTrackOffset + sizeof(uint);

    /// <summary>COWD grain tables have a fixed 4096 entries.</summary>
    public const uint Vmdk3GtesPerGt = 4096;

    // seSparse const header: 26 u64 fields then 304 bytes of padding, one sector.
    public const ulong SeSparseConstMagic = 0x00000000CAFEBABE;
    public const ulong SeSparseVolatileMagic = 0x00000000CAFECAFE;
    public const ulong SeSparseVersion = 0x0000000200000001;
    public const ulong SeSparseGrainSize = 8;
    public const ulong SeSparseGrainTableSize = 64;
    public const int SeSparseMagicOffset = 0;
    public const int SeSparseVersionOffset = 8;
    public const int SeSparseCapacityOffset = 16;
    public const int SeSparseGrainSizeOffset = 24;
    public const int SeSparseGrainTableSizeOffset = 32;
    public const int SeSparseFlagsOffset = 40;
    public const int SeSparseReservedOffset = 48;
    public const int SeSparseReservedLength = 4 * sizeof(ulong);
    public const int SeSparseVolatileHeaderOffsetOffset = 80;
    public const int SeSparseGrainDirOffsetOffset = 128;
    public const int SeSparseGrainDirSizeOffset = 136;
    public const int SeSparsePadOffset = 208;

    // seSparse volatile header: magic, free_gt_number, next_txn_seq_number, replay_journal, 480 bytes of padding.
    public const int SeSparseReplayJournalOffset = 24;
    public const int SeSparseVolatilePadOffset = 32;

    /// <summary>The embedded descriptor of a KDMV or COWD file, as qemu reads it: always at 0x200.</summary>
    public const int EmbeddedDescriptorOffset = 0x200;

    /// <summary>DESC_SIZE: qemu reads CID, parentCID and parentFileNameHint from 20 sectors of descriptor.</summary>
    public const int DescriptorWindowLength = 20 * SectorSize;

    /// <summary>qemu reads at most 1 MiB - 1 of a descriptor file (the bound on a hostile text).</summary>
    public const int MaxDescriptorLength = (1 << 20) - 1;

    /// <summary>qemu's createType buffer is 128 bytes, NUL included.</summary>
    public const int MaxCreateTypeLength = 127;

    /// <summary>qemu's backing_file buffer is 4096 bytes, NUL included.</summary>
    public const int MaxParentFileNameHintLength = 4095;

    /// <summary>The extent line's sscanf widths: %10s for access and type, %511[...] for the file name.</summary>
    public const int MaxAccessLength = 10;
    public const int MaxTypeLength = 10;
    public const int MaxExtentFileNameLength = 511;

    /// <summary>
    /// Our cap on the extent lines of one descriptor. qemu has none (the 1 MiB descriptor allows about 60,000
    /// lines), but every extent is a file both qemu and this library hold open, so a descriptor naming one file
    /// under thousands of spellings exhausts the process's descriptors. 4096 covers a twoGbMaxExtent* image of
    /// 8 TiB (2 GiB per extent).
    /// </summary>
    public const int MaxExtents = 4096;
}
