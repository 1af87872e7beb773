namespace BackingChain.Formats.Vpc;

/// <summary>
/// The VHD hard disk footer and dynamic disk header (Microsoft "Virtual Hard Disk Image Format Specification";
/// qemu 7.2 block/vpc.c; parent fields as Xen's blktap2 vhd.h names them). All numbers are big-endian.
/// Each offset follows from the previous field, so the tables read like the spec.
/// </summary>
internal static class VhdLayout
{
    /// <summary>"conectix".</summary>
    public const ulong FooterCookie = 0x636F6E6563746978;

    public const int CookieOffset = 0;
    public const int FeaturesOffset = CookieOffset + sizeof(ulong);
    public const int FileFormatVersionOffset = FeaturesOffset + sizeof(uint);
    public const int DataOffsetOffset = FileFormatVersionOffset + sizeof(uint);
    public const int TimeStampOffset = DataOffsetOffset + sizeof(ulong);
    public const int CreatorApplicationOffset = TimeStampOffset + sizeof(uint);
    public const int CreatorVersionOffset = CreatorApplicationOffset + sizeof(uint);
    public const int CreatorHostOsOffset = CreatorVersionOffset + sizeof(uint);
    public const int OriginalSizeOffset = CreatorHostOsOffset + sizeof(uint);
    public const int CurrentSizeOffset = OriginalSizeOffset + sizeof(ulong);
    public const int CylindersOffset = CurrentSizeOffset + sizeof(ulong);
    public const int HeadsOffset = CylindersOffset + sizeof(ushort);
    public const int SectorsPerTrackOffset = HeadsOffset + sizeof(byte);
    public const int DiskTypeOffset = SectorsPerTrackOffset + sizeof(byte);
    public const int ChecksumOffset = DiskTypeOffset + sizeof(uint);
    public const int UniqueIdOffset = ChecksumOffset + sizeof(uint);
    public const int GuidLength = 16;
    public const int SavedStateOffset = UniqueIdOffset + GuidLength; // 84

    /// <summary>The footer is one sector; a copy heads dynamic and differencing disks.</summary>
    public const int FooterSize = 512;

    /// <summary>"cxsparse".</summary>
    public const ulong DynamicHeaderCookie = 0x6378737061727365;

    public const int DynamicCookieOffset = 0;
    public const int DynamicDataOffsetOffset = DynamicCookieOffset + sizeof(ulong);
    public const int TableOffsetOffset = DynamicDataOffsetOffset + sizeof(ulong);
    public const int HeaderVersionOffset = TableOffsetOffset + sizeof(ulong);
    public const int MaxTableEntriesOffset = HeaderVersionOffset + sizeof(uint);
    public const int BlockSizeOffset = MaxTableEntriesOffset + sizeof(uint);
    public const int DynamicChecksumOffset = BlockSizeOffset + sizeof(uint);
    public const int ParentUniqueIdOffset = DynamicChecksumOffset + sizeof(uint);
    public const int ParentTimeStampOffset = ParentUniqueIdOffset + GuidLength;
    public const int DynamicReservedOffset = ParentTimeStampOffset + sizeof(uint);
    public const int ParentUnicodeNameOffset = DynamicReservedOffset + sizeof(uint); // 64
    public const int ParentUnicodeNameLength = 512;
    public const int ParentLocatorsOffset = ParentUnicodeNameOffset + ParentUnicodeNameLength; // 576

    // Parent locator entry: platform code | data space | data length | reserved | data offset (absolute).
    public const int LocatorPlatformCodeOffset = 0;
    public const int LocatorDataSpaceOffset = LocatorPlatformCodeOffset + sizeof(uint);
    public const int LocatorDataLengthOffset = LocatorDataSpaceOffset + sizeof(uint);
    public const int LocatorReservedOffset = LocatorDataLengthOffset + sizeof(uint);
    public const int LocatorDataOffsetOffset = LocatorReservedOffset + sizeof(uint);
    public const int LocatorEntrySize = LocatorDataOffsetOffset + sizeof(ulong); // 24
    public const int ParentLocatorCount = 8;

    /// <summary>The dynamic header is two sectors.</summary>
    public const int DynamicHeaderSize = 1024;

    public const int SectorSize = 512;

    /// <summary>qemu's VHD_MAX_SECTORS: 2040 GiB.</summary>
    public const long MaxSectors = 0xFF000000L;

    /// <summary>qemu's VHD_MAX_GEOMETRY: the largest CHS value, at which qemu trusts current_size instead.</summary>
    public const long MaxGeometrySectors = 65535L * 16 * 255;

    /// <summary>A BAT entry that is not allocated.</summary>
    public const uint UnallocatedBlock = 0xFFFFFFFF;

    public const int BatEntrySize = sizeof(uint);

    /// <summary>qemu refuses more BAT entries than INT_MAX / 4.</summary>
    public const uint MaxTableEntries = int.MaxValue / 4;

    /// <summary>Our cap on one locator's platform data: 32767 UTF-16 units, the longest Windows path.</summary>
    public const int MaxLocatorDataLength = 65534;

    /// <summary>Data offset written by fixed disks (no dynamic header).</summary>
    public const ulong NoDataOffset = ulong.MaxValue;
}
