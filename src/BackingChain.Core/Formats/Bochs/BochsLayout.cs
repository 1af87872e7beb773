namespace BackingChain.Formats.Bochs;

/// <summary>The Bochs growing ("redolog") disk image header (qemu 7.2 block/bochs.c). Little-endian, 512 bytes.</summary>
internal static class BochsLayout
{
    public const int MagicOffset = 0;
    public const int MagicLength = 32;
    public const int TypeOffset = MagicOffset + MagicLength;
    public const int TypeLength = 16;
    public const int SubtypeOffset = TypeOffset + TypeLength;
    public const int SubtypeLength = 16;
    public const int VersionOffset = SubtypeOffset + SubtypeLength; // 64
    public const int HeaderOffset = VersionOffset + sizeof(uint); // 68: header size = catalog offset
    public const int CatalogOffset = HeaderOffset + sizeof(uint); // 72: catalog entries
    public const int BitmapOffset = CatalogOffset + sizeof(uint);
    public const int ExtentOffset = BitmapOffset + sizeof(uint); // 80
    public const int V1DiskOffset = ExtentOffset + sizeof(uint); // 84
    public const int V2ReservedOffset = ExtentOffset + sizeof(uint);
    public const int V2DiskOffset = V2ReservedOffset + sizeof(uint); // 88

    public const int HeaderLength = 512;

    public static System.ReadOnlySpan<byte> Magic => "Bochs Virtual HD Image"u8;

    public static System.ReadOnlySpan<byte> RedologType => "Redolog"u8;

    public static System.ReadOnlySpan<byte> GrowingSubtype => "Growing"u8;

    public const uint Version2 = 0x00020000;
    public const uint Version1 = 0x00010000;

    /// <summary>qemu: at most 1M catalog entries (the largest image bximage creates).</summary>
    public const uint MaxCatalogEntries = 0x100000;

    public const uint MinExtentSize = 512;
    public const uint MaxExtentSize = 0x800000;
    public const int SectorSize = 512;
}
