namespace BackingChain.Formats.Parallels;

/// <summary>The Parallels disk image header (docs/interop/parallels.txt; qemu 7.2 block/parallels.h). Little-endian.</summary>
internal static class ParallelsLayout
{
    public const int MagicOffset = 0;
    public const int MagicLength = 16;
    public const int VersionOffset = MagicOffset + MagicLength;
    public const int HeadsOffset = VersionOffset + sizeof(uint);
    public const int CylindersOffset = HeadsOffset + sizeof(uint);
    public const int TracksOffset = CylindersOffset + sizeof(uint);
    public const int BatEntriesOffset = TracksOffset + sizeof(uint);
    public const int NbSectorsOffset = BatEntriesOffset + sizeof(uint);
    public const int InUseOffset = NbSectorsOffset + sizeof(ulong);
    public const int DataOffOffset = InUseOffset + sizeof(uint);
    public const int FlagsOffset = DataOffOffset + sizeof(uint);
    public const int ExtOffOffset = FlagsOffset + sizeof(uint);
    public const int HeaderLength = ExtOffOffset + sizeof(ulong); // 64

    /// <summary>"WithoutFreeSpace": BAT entries in sectors, 32-bit sector count.</summary>
    public static System.ReadOnlySpan<byte> Magic => "WithoutFreeSpace"u8;

    /// <summary>"WithouFreSpacExt": BAT entries in clusters, 64-bit sector count (qemu creates this one).</summary>
    public static System.ReadOnlySpan<byte> MagicExtended => "WithouFreSpacExt"u8;

    public const uint SupportedVersion = 2;

    /// <summary>Written while the image is open read/write.</summary>
    public const uint InUseMagic = 0x746F6E59;

    /// <summary>qemu: tracks (sectors per cluster) at most INT32_MAX / 513.</summary>
    public const uint MaxTracks = int.MaxValue / 513;

    /// <summary>qemu: BAT entries at most INT_MAX / 4.</summary>
    public const uint MaxBatEntries = int.MaxValue / 4;

    /// <summary>Magic of the format extension cluster (block/parallels-ext.c).</summary>
    public const ulong FormatExtensionMagic = 0xAB234CEF23DCEA87;

    public const int SectorSize = 512;
}
