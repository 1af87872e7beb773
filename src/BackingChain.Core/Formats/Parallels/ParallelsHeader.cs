using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Parallels.ParallelsLayout;

namespace BackingChain.Formats.Parallels;

/// <summary>
/// A Parallels disk image header, validated as qemu 7.2's <c>parallels_open</c> validates it. qemu does not
/// read Parallels snapshot chains (they live in DiskDescriptor.xml), so the format names no other file.
/// </summary>
/// <remarks>Parsing allocates nothing.</remarks>
internal readonly struct ParallelsHeader
{
    /// <summary>Gets whether the magic is "WithouFreSpacExt" (BAT in clusters, 64-bit size).</summary>
    public bool IsExtendedFormat { get; internal init; }

    /// <summary>Gets the version (2).</summary>
    public uint Version { get; internal init; }

    /// <summary>Gets the head count.</summary>
    public uint Heads { get; internal init; }

    /// <summary>Gets the cylinder count.</summary>
    public uint Cylinders { get; internal init; }

    /// <summary>Gets the sectors per cluster ("tracks").</summary>
    public uint Tracks { get; internal init; }

    /// <summary>Gets the number of BAT entries.</summary>
    public uint BatEntries { get; internal init; }

    /// <summary>Gets the stored sector count.</summary>
    public ulong NbSectors { get; internal init; }

    /// <summary>Gets the in-use marker (0x746F6E59 while open read/write).</summary>
    public uint InUse { get; internal init; }

    /// <summary>Gets the data area offset in sectors.</summary>
    public uint DataOff { get; internal init; }

    /// <summary>Gets the flags (bit 0: empty image).</summary>
    public uint Flags { get; internal init; }

    /// <summary>Gets the format extension cluster's offset in sectors (0 for none).</summary>
    public ulong ExtOff { get; internal init; }

    /// <summary>Gets the disk size in sectors: only the low 32 bits count for "WithoutFreeSpace".</summary>
    public ulong TotalSectors => IsExtendedFormat ? NbSectors : NbSectors & uint.MaxValue;

    /// <summary>Parses a Parallels header; never throws for bad data.</summary>
    /// <param name="data">At least the 64-byte header.</param>
    /// <param name="header">The header, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the header is one qemu accepts.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out ParallelsHeader header, out HeaderError error)
    {
        error = Read(data, out header);
        return error == HeaderError.None;
    }

    /// <summary>Parses a Parallels header.</summary>
    /// <param name="data">At least the 64-byte header.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a Parallels header qemu accepts.</exception>
    public static ParallelsHeader Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out ParallelsHeader header);
        if (error != HeaderError.None)
        {
            Throw(error, data);
        }

        return header;
    }

    /// <summary>qemu's message for an error of <paramref name="data"/>.</summary>
    internal static string Describe(HeaderError error, ReadOnlySpan<byte> data) => error switch
    {
        HeaderError.InvalidSize when data.Length >= HeaderLength && BinaryPrimitives.ReadUInt32LittleEndian(data[TracksOffset..]) == 0 => "Invalid image: Zero sectors per track",
        HeaderError.InvalidSize when data.Length >= HeaderLength && BinaryPrimitives.ReadUInt32LittleEndian(data[TracksOffset..]) > MaxTracks => "Invalid image: Too big cluster",
        HeaderError.InvalidSize when data.Length >= HeaderLength && BinaryPrimitives.ReadUInt32LittleEndian(data[BatEntriesOffset..]) > MaxBatEntries => "Catalog too large",
        HeaderError.InvalidSize => "Image is too large",
        _ => "Image not in Parallels format",
    };

    /// <summary>The one parsing core, in qemu's order of checks.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out ParallelsHeader header)
    {
        header = default;
        if (data.Length < HeaderLength)
        {
            return HeaderError.Truncated;
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(data[VersionOffset..]) != SupportedVersion)
        {
            return HeaderError.UnsupportedVersion;
        }

        ReadOnlySpan<byte> magic = data.Slice(MagicOffset, MagicLength);
        bool extended = magic.SequenceEqual(MagicExtended);
        if (!extended && !magic.SequenceEqual(Magic))
        {
            return HeaderError.BadMagic;
        }

        uint tracks = BinaryPrimitives.ReadUInt32LittleEndian(data[TracksOffset..]);
        uint batEntries = BinaryPrimitives.ReadUInt32LittleEndian(data[BatEntriesOffset..]);
        if (tracks == 0 || tracks > MaxTracks || batEntries > MaxBatEntries)
        {
            return HeaderError.InvalidSize;
        }

        header = new ParallelsHeader
        {
            IsExtendedFormat = extended,
            Version = SupportedVersion,
            Heads = BinaryPrimitives.ReadUInt32LittleEndian(data[HeadsOffset..]),
            Cylinders = BinaryPrimitives.ReadUInt32LittleEndian(data[CylindersOffset..]),
            Tracks = tracks,
            BatEntries = batEntries,
            NbSectors = BinaryPrimitives.ReadUInt64LittleEndian(data[NbSectorsOffset..]),
            InUse = BinaryPrimitives.ReadUInt32LittleEndian(data[InUseOffset..]),
            DataOff = BinaryPrimitives.ReadUInt32LittleEndian(data[DataOffOffset..]),
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(data[FlagsOffset..]),
            ExtOff = BinaryPrimitives.ReadUInt64LittleEndian(data[ExtOffOffset..]),
        };

        // qemu's length is total_sectors * 512 as an int64; beyond that it cannot report a size.
        if (header.TotalSectors > long.MaxValue / SectorSize)
        {
            header = default;
            return HeaderError.InvalidSize;
        }

        return HeaderError.None;
    }

    [DoesNotReturn]
    private static void Throw(HeaderError error, ReadOnlySpan<byte> data) => throw new ImageFormatException(error, Describe(error, data));
}
