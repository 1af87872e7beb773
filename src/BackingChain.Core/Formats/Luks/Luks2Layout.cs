namespace BackingChain.Formats.Luks;

/// <summary>
/// The LUKS2 binary header (cryptsetup lib/luks2/luks2.h, "LUKS2 On-Disk Format Specification"): 4096 bytes,
/// big-endian, followed by the JSON area; the whole header area is <c>hdr_size</c> bytes.
/// </summary>
internal static class Luks2Layout
{
    public const int MagicOffset = 0;
    public const int MagicLength = 6;
    public const int VersionOffset = MagicOffset + MagicLength;
    public const int HeaderSizeOffset = VersionOffset + sizeof(ushort);
    public const int SequenceIdOffset = HeaderSizeOffset + sizeof(ulong);
    public const int LabelOffset = SequenceIdOffset + sizeof(ulong);
    public const int LabelLength = 48;
    public const int ChecksumAlgorithmOffset = LabelOffset + LabelLength; // 72
    public const int ChecksumAlgorithmLength = 32;
    public const int SaltOffset = ChecksumAlgorithmOffset + ChecksumAlgorithmLength;
    public const int SaltLength = 64;
    public const int UuidOffset = SaltOffset + SaltLength; // 168
    public const int UuidLength = 40;
    public const int SubsystemOffset = UuidOffset + UuidLength; // 208
    public const int SubsystemLength = 48;
    public const int HeaderOffsetOffset = SubsystemOffset + SubsystemLength; // 256
    public const int PaddingOffset = HeaderOffsetOffset + sizeof(ulong);
    public const int PaddingLength = 184;
    public const int ChecksumOffset = PaddingOffset + PaddingLength; // 448
    public const int ChecksumLength = 64;

    /// <summary>The binary header; the JSON area starts here.</summary>
    public const int BinaryHeaderSize = 4096;

    public const ushort SupportedVersion = 2;

    /// <summary>The smallest header area (16 KiB) cryptsetup allows.</summary>
    public const ulong MinHeaderSize = 0x4000;

    /// <summary>The largest header area (4 MiB) cryptsetup allows.</summary>
    public const ulong MaxHeaderSize = 0x400000;

    /// <summary>"SKUL\xBA\xBE", the magic of the secondary header.</summary>
    public static System.ReadOnlySpan<byte> SecondaryMagic => [(byte)'S', (byte)'K', (byte)'U', (byte)'L', 0xBA, 0xBE];
}
