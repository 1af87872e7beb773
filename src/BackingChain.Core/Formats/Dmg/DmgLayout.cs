namespace BackingChain.Formats.Dmg;

/// <summary>
/// The Apple UDIF trailer ("koly" block, 512 bytes, big-endian) and the "mish" block tables qemu 7.2 reads
/// (block/dmg.c).
/// </summary>
internal static class DmgLayout
{
    /// <summary>"koly".</summary>
    public const uint TrailerSignature = 0x6B6F6C79;

    public const int SignatureOffset = 0;
    public const int VersionOffset = SignatureOffset + sizeof(uint);
    public const int HeaderSizeOffset = VersionOffset + sizeof(uint);
    public const int FlagsOffset = HeaderSizeOffset + sizeof(uint);
    public const int RunningDataForkOffsetOffset = FlagsOffset + sizeof(uint);
    public const int DataForkOffsetOffset = RunningDataForkOffsetOffset + sizeof(ulong); // 0x18
    public const int DataForkLengthOffset = DataForkOffsetOffset + sizeof(ulong);
    public const int RsrcForkOffsetOffset = DataForkLengthOffset + sizeof(ulong); // 0x28
    public const int RsrcForkLengthOffset = RsrcForkOffsetOffset + sizeof(ulong); // 0x30
    public const int XmlOffsetOffset = 0xD8;
    public const int XmlLengthOffset = XmlOffsetOffset + sizeof(ulong); // 0xE0
    public const int SectorCountOffset = 0x1EC;

    public const int TrailerSize = 512;

    /// <summary>qemu searches for "koly" in 515 bytes: the last 511 of the second-last sector and 4 of the last.</summary>
    public const int SearchWindow = 515;

    public const int MinimumFileLength = 512;

    /// <summary>"mish".</summary>
    public const uint MishSignature = 0x6D697368;

    public const int MishSectorNumberOffset = 8;
    public const int MishDataOffsetOffset = 0x18;
    public const int MishChunksOffset = 204;
    public const int MishMinimumSize = 244;
    public const int ChunkSize = 40;
    public const int ChunkSectorCountOffset = 0x10;
    public const int ChunkLengthOffset = 0x20;

    /// <summary>qemu's DMG_LENGTHS_MAX (64 MiB) and DMG_SECTORCOUNTS_MAX (64 MiB / 512).</summary>
    public const ulong MaxChunkLength = 64 * 1024 * 1024;
    public const ulong MaxChunkSectors = MaxChunkLength / 512;

    /// <summary>
    /// Our cap on the resources of a resource fork and the &lt;data&gt; elements of a property list. qemu has
    /// none (it walks every resource), but each costs a read here, so a fork of millions of 1-byte resources
    /// would take time growing with the file. Real images hold one "blkx" resource per partition plus a few
    /// others: tens, not thousands.
    /// </summary>
    public const int MaxResources = 4096;

    /// <summary>qemu caps the XML property list at 16 MiB.</summary>
    public const ulong MaxXmlLength = 16 * 1024 * 1024;

    public const uint ChunkZero = 0;        // UDZE
    public const uint ChunkRaw = 1;         // UDRW
    public const uint ChunkIgnore = 2;      // UDIG
    public const uint ChunkZlib = 0x80000005; // UDZO
}
