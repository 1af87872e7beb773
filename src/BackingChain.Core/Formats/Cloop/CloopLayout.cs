namespace BackingChain.Formats.Cloop;

/// <summary>The cloop V2.0 compressed loopback image (qemu 7.2 block/cloop.c). Big-endian.</summary>
internal static class CloopLayout
{
    /// <summary>The shell preamble qemu's probe compares.</summary>
    public static System.ReadOnlySpan<byte> Preamble =>
        "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"u8;

    /// <summary>The preamble area: the header fields follow at 128.</summary>
    public const int PreambleAreaLength = 128;

    public const int BlockSizeOffset = PreambleAreaLength;
    public const int BlockCountOffset = BlockSizeOffset + sizeof(uint);
    public const int OffsetsOffset = BlockCountOffset + sizeof(uint); // 136
    public const int HeaderLength = OffsetsOffset;

    public const int SectorSize = 512;

    /// <summary>qemu: block_size at most 64 MiB.</summary>
    public const uint MaxBlockSize = 64 * 1024 * 1024;

    /// <summary>qemu: the offsets table at most 512 MiB.</summary>
    public const ulong MaxOffsetsSize = 512UL * 1024 * 1024;

    /// <summary>qemu: n_blocks at most (UINT32_MAX − 1) / 8, so (n_blocks + 1) × 8 cannot overflow.</summary>
    public const uint MaxBlocks = (uint.MaxValue - 1) / sizeof(ulong);
}
