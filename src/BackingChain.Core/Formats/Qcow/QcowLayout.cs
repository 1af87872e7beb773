namespace BackingChain.Formats.Qcow;

/// <summary>
/// Byte offsets and limits of the qcow version 1 header (qemu 7.2 block/qcow.c, <c>QCowHeader</c>).
/// All numbers on disk are big-endian. Each offset follows from the previous field.
/// </summary>
internal static class QcowLayout
{
    /// <summary>"QFI\xFB", the magic qcow shares with qcow2; the version tells them apart.</summary>
    public const uint Magic = 0x514649FB;

    public const uint Version1 = 1;

    public const int MagicOffset = 0;
    public const int VersionOffset = MagicOffset + sizeof(uint);
    public const int BackingFileOffsetOffset = VersionOffset + sizeof(uint);
    public const int BackingFileSizeOffset = BackingFileOffsetOffset + sizeof(ulong);
    public const int MtimeOffset = BackingFileSizeOffset + sizeof(uint);
    public const int SizeOffset = MtimeOffset + sizeof(uint);
    public const int ClusterBitsOffset = SizeOffset + sizeof(ulong);
    public const int L2BitsOffset = ClusterBitsOffset + sizeof(byte);
    public const int PaddingOffset = L2BitsOffset + sizeof(byte);
    public const int CryptMethodOffset = PaddingOffset + sizeof(ushort);
    public const int L1TableOffsetOffset = CryptMethodOffset + sizeof(uint);

    /// <summary>sizeof(QCowHeader): 48 bytes, also the probe's minimum buffer.</summary>
    public const int HeaderLength = L1TableOffsetOffset + sizeof(ulong);

    /// <summary>"Image size is too small (must be at least 2 bytes)".</summary>
    public const ulong MinSize = 2;

    /// <summary>"Cluster size must be between 512 and 64k".</summary>
    public const int MinClusterBits = 9;
    public const int MaxClusterBits = 16;

    /// <summary>"L2 table size must be between 512 and 64k": entries are 8 bytes, so 2^6..2^13 entries.</summary>
    public const int MinL2Bits = MinClusterBits - 3;
    public const int MaxL2Bits = MaxClusterBits - 3;

    /// <summary>0 = none, 1 = AES; anything larger is "invalid encryption method in qcow header".</summary>
    public const uint MaxCryptMethod = 1;

    /// <summary>"Backing file name too long" past 1023 bytes (qemu's 1024-byte backing_file buffer).</summary>
    public const int MaxBackingFileNameLength = 1023;

    /// <summary>qemu refuses an L1 table of more than INT_MAX / 8 entries ("Image too large").</summary>
    public const ulong MaxL1Entries = int.MaxValue / sizeof(ulong);
}
