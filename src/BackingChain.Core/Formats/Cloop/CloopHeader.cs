using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Cloop.CloopLayout;

namespace BackingChain.Formats.Cloop;

/// <summary>
/// The fixed part of a cloop V2.0 image: block size and block count, validated as qemu 7.2's <c>cloop_open</c>
/// validates them (qemu does not check the shell preamble when opening, only when probing).
/// </summary>
/// <remarks>
/// Parsing allocates nothing. The offsets table that follows ((n + 1) big-endian u64 at 136) is checked by the
/// reader (monotonic, no block larger than 128 MiB).
/// </remarks>
internal readonly struct CloopHeader
{
    /// <summary>Gets the uncompressed block size (a multiple of 512, at most 64 MiB).</summary>
    public uint BlockSize { get; internal init; }

    /// <summary>Gets the number of blocks.</summary>
    public uint BlockCount { get; internal init; }

    /// <summary>Gets whether the image starts with the V2.0 shell preamble.</summary>
    public bool HasPreamble { get; internal init; }

    /// <summary>Gets the size of the offsets table in bytes.</summary>
    public ulong OffsetsSize => ((ulong)BlockCount + 1) * sizeof(ulong);

    /// <summary>
    /// Gets the virtual size qemu reports: n_blocks × sectors per block computed in 32 bits, as qemu does
    /// (so sizes of 2 TiB and more wrap), times 512.
    /// </summary>
    public long VirtualSize => (long)unchecked(BlockCount * (BlockSize / SectorSize)) * SectorSize;

    /// <summary>Parses a cloop header; never throws for bad data.</summary>
    /// <param name="data">At least the first 136 bytes.</param>
    /// <param name="header">The header, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the header is one qemu accepts.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out CloopHeader header, out HeaderError error)
    {
        error = Read(data, out header, out _);
        return error == HeaderError.None;
    }

    /// <summary>Parses a cloop header.</summary>
    /// <param name="data">At least the first 136 bytes.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a cloop header qemu accepts.</exception>
    public static CloopHeader Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out CloopHeader header, out string? message);
        if (error != HeaderError.None)
        {
            Throw(error, message!);
        }

        return header;
    }

    /// <summary>The one parsing core, with qemu's messages.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out CloopHeader header, out string? message)
    {
        header = default;
        message = null;
        if (data.Length < HeaderLength)
        {
            message = "Could not read cloop header";
            return HeaderError.Truncated;
        }

        uint blockSize = BinaryPrimitives.ReadUInt32BigEndian(data[BlockSizeOffset..]);
        if (blockSize % SectorSize != 0)
        {
            message = $"block_size {blockSize} must be a multiple of 512";
            return HeaderError.InvalidSize;
        }

        if (blockSize == 0)
        {
            message = "block_size cannot be zero";
            return HeaderError.InvalidSize;
        }

        if (blockSize > MaxBlockSize)
        {
            message = $"block_size {blockSize} must be {MaxBlockSize / (1024 * 1024)} MB or less";
            return HeaderError.InvalidSize;
        }

        uint blocks = BinaryPrimitives.ReadUInt32BigEndian(data[BlockCountOffset..]);
        if (blocks > MaxBlocks)
        {
            message = $"n_blocks {blocks} must be {MaxBlocks} or less";
            return HeaderError.InvalidSize;
        }

        if (((ulong)blocks + 1) * sizeof(ulong) > MaxOffsetsSize)
        {
            message = "image requires too many offsets, try increasing block size";
            return HeaderError.InvalidSize;
        }

        header = new CloopHeader { BlockSize = blockSize, BlockCount = blocks, HasPreamble = data.StartsWith(Preamble) };
        return HeaderError.None;
    }

    [DoesNotReturn]
    private static void Throw(HeaderError error, string message) => throw new ImageFormatException(error, message);
}
