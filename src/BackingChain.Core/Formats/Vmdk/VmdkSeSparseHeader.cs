using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Vmdk.VmdkLayout;

namespace BackingChain.Formats.Vmdk;

/// <summary>
/// The ESXi seSparse constant header (one sector at the start of a SESPARSE extent), with qemu 7.2's strict
/// checks (<c>check_se_sparse_const_header</c>): the format is not documented, so qemu accepts only the one
/// layout it knows. Parsing allocates nothing.
/// </summary>
internal readonly struct VmdkSeSparseHeader
{
    /// <summary>The capacity of the extent, in sectors.</summary>
    public ulong Capacity { get; internal init; }

    /// <summary>The grain size in sectors (always 8).</summary>
    public ulong GrainSize { get; internal init; }

    /// <summary>Where the volatile header is, in sectors.</summary>
    public ulong VolatileHeaderOffset { get; internal init; }

    /// <summary>Where the grain directory is, in sectors.</summary>
    public ulong GrainDirOffset { get; internal init; }

    /// <summary>The size of the grain directory, in sectors.</summary>
    public ulong GrainDirSize { get; internal init; }

    /// <summary>Parses a seSparse constant header; never throws for bad data.</summary>
    /// <param name="data">The first sector of the extent file.</param>
    /// <param name="header">The header, when parsing succeeded. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it did not.</param>
    /// <returns><see langword="true"/> when the header is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out VmdkSeSparseHeader header, out HeaderError error)
    {
        error = Read(data, out header);
        return error == HeaderError.None;
    }

    /// <summary>Parses a seSparse constant header.</summary>
    /// <param name="data">The first sector of the extent file.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid seSparse header.</exception>
    public static VmdkSeSparseHeader Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out VmdkSeSparseHeader header);
        if (error != HeaderError.None)
        {
            ThrowInvalid(error);
        }

        return header;
    }

    /// <summary>check_se_sparse_volatile_header: the magic, no journal to replay, zero padding.</summary>
    /// <param name="data">The volatile header sector.</param>
    /// <returns>What is wrong, or <see cref="HeaderError.None"/>.</returns>
    internal static HeaderError CheckVolatileHeader(ReadOnlySpan<byte> data)
    {
        if (data.Length < SectorSize)
        {
            return HeaderError.Truncated;
        }

        if (BinaryPrimitives.ReadUInt64LittleEndian(data) != SeSparseVolatileMagic)
        {
            return HeaderError.BadMagic;
        }

        // "Image is dirty, Replaying journal not supported" / "Unsupported non-zero volatile header padding"
        if (BinaryPrimitives.ReadUInt64LittleEndian(data[SeSparseReplayJournalOffset..]) != 0
            || data[SeSparseVolatilePadOffset..SectorSize].ContainsAnyExcept((byte)0))
        {
            return HeaderError.UnsupportedFeature;
        }

        return HeaderError.None;
    }

    internal static HeaderError Read(ReadOnlySpan<byte> data, out VmdkSeSparseHeader header)
    {
        header = default;
        if (data.Length < SectorSize)
        {
            return HeaderError.Truncated;
        }

        // "Bad const header magic"
        if (BinaryPrimitives.ReadUInt64LittleEndian(data[SeSparseMagicOffset..]) != SeSparseConstMagic)
        {
            return HeaderError.BadMagic;
        }

        // "Unsupported version"
        if (BinaryPrimitives.ReadUInt64LittleEndian(data[SeSparseVersionOffset..]) != SeSparseVersion)
        {
            return HeaderError.UnsupportedVersion;
        }

        // "Unsupported grain size" / "grain table size" / "flags" / "reserved bits" / "non-zero const header padding"
        if (BinaryPrimitives.ReadUInt64LittleEndian(data[SeSparseGrainSizeOffset..]) != SeSparseGrainSize
            || BinaryPrimitives.ReadUInt64LittleEndian(data[SeSparseGrainTableSizeOffset..]) != SeSparseGrainTableSize
            || BinaryPrimitives.ReadUInt64LittleEndian(data[SeSparseFlagsOffset..]) != 0
            || data.Slice(SeSparseReservedOffset, SeSparseReservedLength).ContainsAnyExcept((byte)0)
            || data[SeSparsePadOffset..SectorSize].ContainsAnyExcept((byte)0))
        {
            return HeaderError.UnsupportedFeature;
        }

        var result = new VmdkSeSparseHeader
        {
            Capacity = BinaryPrimitives.ReadUInt64LittleEndian(data[SeSparseCapacityOffset..]),
            GrainSize = SeSparseGrainSize,
            VolatileHeaderOffset = BinaryPrimitives.ReadUInt64LittleEndian(data[SeSparseVolatileHeaderOffsetOffset..]),
            GrainDirOffset = BinaryPrimitives.ReadUInt64LittleEndian(data[SeSparseGrainDirOffsetOffset..]),
            GrainDirSize = BinaryPrimitives.ReadUInt64LittleEndian(data[SeSparseGrainDirSizeOffset..]),
        };

        // "L1 size too big": grain_dir_size sectors of 8-byte entries; the multiplication wraps in qemu.
        ulong l1Size = unchecked(result.GrainDirSize * SectorSize / sizeof(ulong));
        if ((uint)l1Size > MaxL1Entries || result.Capacity > long.MaxValue >> SectorShift)
        {
            return HeaderError.InvalidSize;
        }

        header = result;
        return HeaderError.None;
    }

    [DoesNotReturn]
    private static void ThrowInvalid(HeaderError error) =>
        throw new ImageFormatException(error, "Invalid seSparse header: " + error);
}
