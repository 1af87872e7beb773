using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Bochs.BochsLayout;

namespace BackingChain.Formats.Bochs;

/// <summary>
/// A Bochs growing disk image header (versions 1 and 2), validated as qemu 7.2's <c>bochs_open</c> validates
/// it. The strings are compared as C strings: the text, then a NUL, inside the field.
/// </summary>
/// <remarks>Parsing allocates nothing.</remarks>
internal readonly struct BochsHeader
{
    /// <summary>Gets the version (0x00020000 or 0x00010000).</summary>
    public uint Version { get; internal init; }

    /// <summary>Gets the header size, which is also the catalog's offset.</summary>
    public uint HeaderSize { get; internal init; }

    /// <summary>Gets the number of catalog entries.</summary>
    public uint CatalogEntries { get; internal init; }

    /// <summary>Gets the bitmap size in bytes.</summary>
    public uint BitmapSize { get; internal init; }

    /// <summary>Gets the extent size in bytes (a power of two from 512 to 8 MiB).</summary>
    public uint ExtentSize { get; internal init; }

    /// <summary>Gets the disk size in bytes as stored.</summary>
    public ulong DiskSize { get; internal init; }

    /// <summary>Gets the virtual size qemu reports: the disk size rounded down to 512.</summary>
    public long VirtualSize => (long)(DiskSize / SectorSize) * SectorSize;

    /// <summary>Parses a Bochs header; never throws for bad data.</summary>
    /// <param name="data">The 512-byte header.</param>
    /// <param name="header">The header, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the header is one qemu accepts.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out BochsHeader header, out HeaderError error)
    {
        error = Read(data, out header, out _);
        return error == HeaderError.None;
    }

    /// <summary>Parses a Bochs header.</summary>
    /// <param name="data">The 512-byte header.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a Bochs header qemu accepts.</exception>
    public static BochsHeader Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out BochsHeader header, out string? message);
        if (error != HeaderError.None)
        {
            Throw(error, message!);
        }

        return header;
    }

    /// <summary>Whether the three strings and the version are those of a growing redolog (the probe's test too).</summary>
    internal static bool HasSignature(ReadOnlySpan<byte> data) =>
        data.Length >= HeaderLength
        && IsCString(data.Slice(MagicOffset, MagicLength), Magic)
        && IsCString(data.Slice(TypeOffset, TypeLength), RedologType)
        && IsCString(data.Slice(SubtypeOffset, SubtypeLength), GrowingSubtype)
        && BinaryPrimitives.ReadUInt32LittleEndian(data[VersionOffset..]) is Version2 or Version1;

    /// <summary>The one parsing core, in qemu's order of checks, with qemu's messages.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out BochsHeader header, out string? message)
    {
        header = default;
        message = null;
        if (data.Length < HeaderLength)
        {
            message = "Image not in Bochs format";
            return HeaderError.Truncated;
        }

        if (!HasSignature(data))
        {
            message = "Image not in Bochs format";
            return HeaderError.BadMagic;
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(data[VersionOffset..]);
        ulong disk = BinaryPrimitives.ReadUInt64LittleEndian(data[(version == Version1 ? V1DiskOffset : V2DiskOffset)..]);
        uint catalog = BinaryPrimitives.ReadUInt32LittleEndian(data[CatalogOffset..]);
        uint extent = BinaryPrimitives.ReadUInt32LittleEndian(data[ExtentOffset..]);
        if (catalog > MaxCatalogEntries)
        {
            message = "Catalog size is too large";
            return HeaderError.InvalidSize;
        }

        if (extent < MinExtentSize)
        {
            message = "Extent size must be at least 512";
            return HeaderError.InvalidSize;
        }

        if ((extent & (extent - 1)) != 0)
        {
            message = $"Extent size {extent} is not a power of two";
            return HeaderError.InvalidSize;
        }

        if (extent > MaxExtentSize)
        {
            message = $"Extent size {extent} is too large";
            return HeaderError.InvalidSize;
        }

        // total_sectors is an int64 in qemu: a size of 2^63 or more reads as negative and fails the catalog test.
        long totalSectors = (long)(disk / SectorSize);
        ulong sectorsPerExtent = extent / SectorSize;
        if ((ulong)catalog < ((ulong)totalSectors + sectorsPerExtent - 1) / sectorsPerExtent)
        {
            message = "Catalog size is too small for this disk size";
            return HeaderError.Inconsistent;
        }

        header = new BochsHeader
        {
            Version = version,
            HeaderSize = BinaryPrimitives.ReadUInt32LittleEndian(data[HeaderOffset..]),
            CatalogEntries = catalog,
            BitmapSize = BinaryPrimitives.ReadUInt32LittleEndian(data[BitmapOffset..]),
            ExtentSize = extent,
            DiskSize = disk,
        };
        return HeaderError.None;
    }

    /// <summary>strcmp(field, text) == 0 within the field: the text, then a NUL.</summary>
    private static bool IsCString(ReadOnlySpan<byte> field, ReadOnlySpan<byte> text) =>
        field.Length > text.Length && field.StartsWith(text) && field[text.Length] == 0;

    [DoesNotReturn]
    private static void Throw(HeaderError error, string message) => throw new ImageFormatException(error, message);
}
