namespace BackingChain.Formats.Vdi;

/// <summary>The VirtualBox disk image header, version 1.1 (qemu 7.2 block/vdi.c). Little-endian.</summary>
internal static class VdiLayout
{
    public const int TextOffset = 0;
    public const int TextLength = 64;
    public const int SignatureOffset = TextOffset + TextLength; // 0x40
    public const int VersionOffset = SignatureOffset + sizeof(uint);
    public const int HeaderSizeOffset = VersionOffset + sizeof(uint);
    public const int ImageTypeOffset = HeaderSizeOffset + sizeof(uint);
    public const int ImageFlagsOffset = ImageTypeOffset + sizeof(uint);
    public const int DescriptionOffset = ImageFlagsOffset + sizeof(uint);
    public const int DescriptionLength = 256;
    public const int OffsetBmapOffset = DescriptionOffset + DescriptionLength; // 0x154
    public const int OffsetDataOffset = OffsetBmapOffset + sizeof(uint);
    public const int CylindersOffset = OffsetDataOffset + sizeof(uint);
    public const int HeadsOffset = CylindersOffset + sizeof(uint);
    public const int SectorsOffset = HeadsOffset + sizeof(uint);
    public const int SectorSizeOffset = SectorsOffset + sizeof(uint); // 0x168
    public const int Unused1Offset = SectorSizeOffset + sizeof(uint);
    public const int DiskSizeOffset = Unused1Offset + sizeof(uint); // 0x170
    public const int BlockSizeOffset = DiskSizeOffset + sizeof(ulong);
    public const int BlockExtraOffset = BlockSizeOffset + sizeof(uint);
    public const int BlocksInImageOffset = BlockExtraOffset + sizeof(uint); // 0x180
    public const int BlocksAllocatedOffset = BlocksInImageOffset + sizeof(uint);
    public const int UuidLength = 16;
    public const int UuidImageOffset = BlocksAllocatedOffset + sizeof(uint); // 0x188
    public const int UuidLastSnapOffset = UuidImageOffset + UuidLength;
    public const int UuidLinkOffset = UuidLastSnapOffset + UuidLength;
    public const int UuidParentOffset = UuidLinkOffset + UuidLength; // 0x1B8

    /// <summary>qemu reads (and its probe needs) a full 512-byte header.</summary>
    public const int HeaderLength = 512;

    public const uint Signature = 0xBEDA107F;
    public const uint Version11 = 0x00010001;
    public const int SectorSize = 512;

    /// <summary>qemu supports only 1 MiB blocks.</summary>
    public const uint BlockSize = 1024 * 1024;

    /// <summary>qemu's VDI_BLOCKS_IN_IMAGE_MAX: (INT_MAX + 1 − 512) / 4.</summary>
    public const uint MaxBlocksInImage = 0x1FFFFF80;

    /// <summary>qemu's VDI_DISK_SIZE_MAX.</summary>
    public const ulong MaxDiskSize = (ulong)MaxBlocksInImage * BlockSize;
}
