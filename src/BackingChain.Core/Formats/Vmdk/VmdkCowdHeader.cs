using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Vmdk.VmdkLayout;

namespace BackingChain.Formats.Vmdk;

/// <summary>
/// The legacy ESX sparse header "COWD" (VMDK3Header) of VMFSSPARSE extents, with the checks qemu 7.2's
/// <c>vmdk_open_vmfs_sparse</c> and <c>vmdk_add_extent</c> make. Parsing allocates nothing.
/// </summary>
internal readonly struct VmdkCowdHeader
{
    /// <summary>The version field.</summary>
    public uint Version { get; internal init; }

    /// <summary>The flags field.</summary>
    public uint Flags { get; internal init; }

    /// <summary>The capacity of the extent, in sectors.</summary>
    public uint DiskSectors { get; internal init; }

    /// <summary>The grain size, in sectors.</summary>
    public uint Granularity { get; internal init; }

    /// <summary>The offset of the grain directory, in sectors.</summary>
    public uint L1DirOffset { get; internal init; }

    /// <summary>The number of grain directory entries.</summary>
    public uint L1DirSize { get; internal init; }

    /// <summary>The file size field, in sectors.</summary>
    public uint FileSectors { get; internal init; }

    /// <summary>The grain size in bytes.</summary>
    public long GrainSize => (long)Granularity * SectorSize;

    /// <summary>Parses a COWD header; never throws for bad data.</summary>
    /// <param name="data">The first sector of the extent file.</param>
    /// <param name="header">The header, when parsing succeeded. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it did not.</param>
    /// <returns><see langword="true"/> when the header is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out VmdkCowdHeader header, out HeaderError error)
    {
        error = Read(data, out header);
        return error == HeaderError.None;
    }

    /// <summary>Parses a COWD header.</summary>
    /// <param name="data">The first sector of the extent file.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid COWD header.</exception>
    public static VmdkCowdHeader Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out VmdkCowdHeader header);
        if (error != HeaderError.None)
        {
            ThrowInvalid(error);
        }

        return header;
    }

    internal static HeaderError Read(ReadOnlySpan<byte> data, out VmdkCowdHeader header)
    {
        header = default;
        if (data.Length < Vmdk3HeaderLength)
        {
            return HeaderError.Truncated;
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(data) != Vmdk3Magic)
        {
            return HeaderError.BadMagic;
        }

        var result = new VmdkCowdHeader
        {
            Version = BinaryPrimitives.ReadUInt32LittleEndian(data[Vmdk3VersionOffset..]),
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(data[Vmdk3FlagsOffset..]),
            DiskSectors = BinaryPrimitives.ReadUInt32LittleEndian(data[Vmdk3DiskSectorsOffset..]),
            Granularity = BinaryPrimitives.ReadUInt32LittleEndian(data[Vmdk3GranularityOffset..]),
            L1DirOffset = BinaryPrimitives.ReadUInt32LittleEndian(data[Vmdk3L1DirOffsetOffset..]),
            L1DirSize = BinaryPrimitives.ReadUInt32LittleEndian(data[Vmdk3L1DirSizeOffset..]),
            FileSectors = BinaryPrimitives.ReadUInt32LittleEndian(data[Vmdk3FileSectorsOffset..]),
        };

        // "Invalid granularity, image may be corrupt" / "L1 size too big" (vmdk_add_extent).
        if (result.Granularity > MaxGranularitySectors || result.L1DirSize > MaxL1Entries)
        {
            return HeaderError.InvalidSize;
        }

        header = result;
        return HeaderError.None;
    }

    [DoesNotReturn]
    private static void ThrowInvalid(HeaderError error) =>
        throw new ImageFormatException(error, VmdkSparseHeader.Describe(error));
}
