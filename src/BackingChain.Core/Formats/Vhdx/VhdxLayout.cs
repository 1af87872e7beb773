using System;

namespace BackingChain.Formats.Vhdx;

/// <summary>
/// The VHDX header section, region table, metadata region and parent locator ([MS-VHDX] section 2; qemu 7.2
/// block/vhdx.h). All numbers are little-endian, GUIDs in Microsoft's mixed-endian layout.
/// </summary>
internal static class VhdxLayout
{
    /// <summary>"vhdxfile".</summary>
    public const ulong FileSignature = 0x656C696678646876;

    public const int FileSignatureOffset = 0;
    public const int CreatorOffset = FileSignatureOffset + sizeof(ulong);
    public const int CreatorLength = 512;

    public const long Header1Offset = 64 * 1024;
    public const long Header2Offset = 128 * 1024;
    public const long RegionTable1Offset = 192 * 1024;
    public const long RegionTable2Offset = 256 * 1024;
    public const long HeaderSectionSize = 1024 * 1024;

    /// <summary>"head".</summary>
    public const uint HeaderSignature = 0x64616568;

    public const int HeaderSignatureOffset = 0;
    public const int HeaderChecksumOffset = HeaderSignatureOffset + sizeof(uint);
    public const int SequenceNumberOffset = HeaderChecksumOffset + sizeof(uint);
    public const int FileWriteGuidOffset = SequenceNumberOffset + sizeof(ulong);
    public const int GuidLength = 16;
    public const int DataWriteGuidOffset = FileWriteGuidOffset + GuidLength;
    public const int LogGuidOffset = DataWriteGuidOffset + GuidLength;
    public const int LogVersionOffset = LogGuidOffset + GuidLength;
    public const int VersionOffset = LogVersionOffset + sizeof(ushort);
    public const int LogLengthOffset = VersionOffset + sizeof(ushort);
    public const int LogOffsetOffset = LogLengthOffset + sizeof(uint);

    /// <summary>The checksum covers the whole 4 KiB header block.</summary>
    public const int HeaderSize = 4096;

    public const ushort SupportedVersion = 1;

    /// <summary>"regi".</summary>
    public const uint RegionTableSignature = 0x69676572;

    public const int RegionSignatureOffset = 0;
    public const int RegionChecksumOffset = RegionSignatureOffset + sizeof(uint);
    public const int RegionEntryCountOffset = RegionChecksumOffset + sizeof(uint);
    public const int RegionReservedOffset = RegionEntryCountOffset + sizeof(uint);
    public const int RegionEntriesOffset = RegionReservedOffset + sizeof(uint); // 16

    public const int RegionEntryGuidOffset = 0;
    public const int RegionEntryFileOffsetOffset = RegionEntryGuidOffset + GuidLength;
    public const int RegionEntryLengthOffset = RegionEntryFileOffsetOffset + sizeof(ulong);
    public const int RegionEntryRequiredOffset = RegionEntryLengthOffset + sizeof(uint);
    public const int RegionEntrySize = RegionEntryRequiredOffset + sizeof(uint); // 32

    /// <summary>The region table block (and the checksum's extent) is 64 KiB.</summary>
    public const int RegionTableSize = 64 * 1024;

    public const uint MaxRegionEntries = 2047;

    /// <summary>"metadata".</summary>
    public const ulong MetadataSignature = 0x617461646174656D;

    public const int MetadataSignatureOffset = 0;
    public const int MetadataReservedOffset = MetadataSignatureOffset + sizeof(ulong);
    public const int MetadataEntryCountOffset = MetadataReservedOffset + sizeof(ushort);
    public const int MetadataReserved2Offset = MetadataEntryCountOffset + sizeof(ushort);
    public const int MetadataEntriesOffset = MetadataReserved2Offset + (5 * sizeof(uint)); // 32

    public const int MetadataItemIdOffset = 0;
    public const int MetadataItemOffsetOffset = MetadataItemIdOffset + GuidLength;
    public const int MetadataItemLengthOffset = MetadataItemOffsetOffset + sizeof(uint);
    public const int MetadataItemFlagsOffset = MetadataItemLengthOffset + sizeof(uint);
    public const int MetadataEntrySize = MetadataItemFlagsOffset + (2 * sizeof(uint)); // 32

    /// <summary>The metadata table occupies the first 64 KiB of the metadata region.</summary>
    public const int MetadataTableSize = 64 * 1024;

    public const uint MetadataFlagIsUser = 1;
    public const uint MetadataFlagIsVirtualDisk = 2;
    public const uint MetadataFlagIsRequired = 4;

    public const uint FileParametersLeaveBlocksAllocated = 1;
    public const uint FileParametersHasParent = 2;

    public const uint MinBlockSize = 1024 * 1024;
    public const uint MaxBlockSize = 256 * 1024 * 1024;

    /// <summary>qemu's VHDX_MAX_SECTORS_PER_BLOCK (2^23), which gives the chunk ratio.</summary>
    public const ulong MaxSectorsPerBlock = 1UL << 23;

    // Parent locator item: GUID locator type | u16 reserved | u16 key/value count, then 12-byte entries.
    public const int LocatorTypeOffset = 0;
    public const int LocatorReservedOffset = LocatorTypeOffset + GuidLength;
    public const int LocatorKeyValueCountOffset = LocatorReservedOffset + sizeof(ushort);
    public const int LocatorEntriesOffset = LocatorKeyValueCountOffset + sizeof(ushort); // 20

    public const int LocatorKeyOffsetOffset = 0;
    public const int LocatorValueOffsetOffset = LocatorKeyOffsetOffset + sizeof(uint);
    public const int LocatorKeyLengthOffset = LocatorValueOffsetOffset + sizeof(uint);
    public const int LocatorValueLengthOffset = LocatorKeyLengthOffset + sizeof(ushort);
    public const int LocatorEntrySize = LocatorValueLengthOffset + sizeof(ushort); // 12

    /// <summary>A metadata item is at most 1 MiB ([MS-VHDX] 2.6.1.2), which also bounds the locator.</summary>
    public const int MaxMetadataItemLength = 1024 * 1024;

    // BAT entries: state in bits 0-2, file offset in MiB in bits 20-63.
    public const ulong BatStateMask = 0x7;
    public const ulong BatFileOffsetMask = 0xFFFFFFFFFFF00000;
    public const ulong PayloadBlockFullyPresent = 6;
    public const ulong PayloadBlockPartiallyPresent = 7;

    public static readonly Guid BatRegion = new("2DC27766-F623-4200-9D64-115E9BFD4A08");
    public static readonly Guid MetadataRegion = new("8B7CA206-4790-4B9A-B8FE-575F050F886E");
    public static readonly Guid FileParametersItem = new("CAA16737-FA36-4D43-B3B6-33F0AA44E76B");
    public static readonly Guid VirtualDiskSizeItem = new("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
    public static readonly Guid Page83Item = new("BECA12AB-B2E6-4523-93EF-C309E000C746");
    public static readonly Guid LogicalSectorSizeItem = new("8141BF1D-A96F-4709-BA47-F233A8FAAB5F");
    public static readonly Guid PhysicalSectorSizeItem = new("CDA348C7-445D-4471-9CC9-E9885251C556");
    public static readonly Guid ParentLocatorItem = new("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");
    public static readonly Guid VhdxParentLocatorType = new("B04AEFB7-D19E-4A81-B789-25B8E9445913");
}
