using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Vdi.VdiLayout;

namespace BackingChain.Formats.Vdi;

/// <summary>
/// A VirtualBox disk image header (version 1.1), validated as qemu 7.2's <c>vdi_open</c> validates it.
/// A differencing VDI names its parent by UUID only: <see cref="ParentUuid"/> is read and exposed, and
/// <see cref="TryParse"/> accepts it, but qemu (and so the <c>vdi</c> reader) refuses to open one.
/// </summary>
/// <remarks>Parsing allocates nothing. UUIDs are stored in Microsoft GUID byte order.</remarks>
internal readonly struct VdiHeader
{
    /// <summary>Gets the header version (0x00010001 for 1.1).</summary>
    public uint Version { get; internal init; }

    /// <summary>Gets the size of the header fields after the version.</summary>
    public uint HeaderSize { get; internal init; }

    /// <summary>Gets the image type.</summary>
    public VdiImageType ImageType { get; internal init; }

    /// <summary>Gets the image flags.</summary>
    public uint ImageFlags { get; internal init; }

    /// <summary>Gets the offset of the block map (a multiple of 512).</summary>
    public uint OffsetBmap { get; internal init; }

    /// <summary>Gets the offset of the data (a multiple of 512).</summary>
    public uint OffsetData { get; internal init; }

    /// <summary>Gets the sector size (512).</summary>
    public uint SectorSize { get; internal init; }

    /// <summary>Gets the disk size in bytes as stored.</summary>
    public ulong DiskSize { get; internal init; }

    /// <summary>Gets the block size (1 MiB).</summary>
    public uint BlockSize { get; internal init; }

    /// <summary>Gets the extra bytes stored before each block.</summary>
    public uint BlockExtra { get; internal init; }

    /// <summary>Gets the number of blocks the block map describes.</summary>
    public uint BlocksInImage { get; internal init; }

    /// <summary>Gets the number of allocated blocks.</summary>
    public uint BlocksAllocated { get; internal init; }

    /// <summary>Gets the image's UUID.</summary>
    public Guid ImageUuid { get; internal init; }

    /// <summary>Gets the UUID of the last snapshot.</summary>
    public Guid LastSnapshotUuid { get; internal init; }

    /// <summary>Gets the link UUID (qemu requires it to be null).</summary>
    public Guid LinkUuid { get; internal init; }

    /// <summary>Gets the parent's UUID; not null for a differencing image, which qemu refuses.</summary>
    public Guid ParentUuid { get; internal init; }

    /// <summary>Gets whether the image names a parent (by UUID).</summary>
    public bool HasParent => ParentUuid != Guid.Empty;

    /// <summary>Gets the virtual size qemu reports: <see cref="DiskSize"/> rounded up to 512.</summary>
    public long VirtualSize => (long)((DiskSize + SectorSizeConstant - 1) & ~(ulong)(SectorSizeConstant - 1));

    private const int SectorSizeConstant = VdiLayout.SectorSize;

    /// <summary>Parses a VDI header; never throws for bad data.</summary>
    /// <param name="data">The first 512 bytes of the image.</param>
    /// <param name="header">The header, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the header is one qemu accepts, apart from a parent UUID.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out VdiHeader header, out HeaderError error)
    {
        error = Read(data, out header, out _);
        return error == HeaderError.None;
    }

    /// <summary>Parses a VDI header.</summary>
    /// <param name="data">The first 512 bytes of the image.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a VDI header qemu accepts.</exception>
    public static VdiHeader Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out VdiHeader header, out string? message);
        if (error != HeaderError.None)
        {
            Throw(error, message!);
        }

        return header;
    }

    /// <summary>The one parsing core, in qemu's order of checks, with qemu's message.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out VdiHeader header, out string? message)
    {
        header = default;
        message = null;
        if (data.Length < HeaderLength)
        {
            message = "Could not read VDI header";
            return HeaderError.Truncated;
        }

        ulong diskSize = BinaryPrimitives.ReadUInt64LittleEndian(data[DiskSizeOffset..]);
        if (diskSize > MaxDiskSize)
        {
            message = $"Unsupported VDI image size (size is 0x{diskSize:x}, max supported is 0x{MaxDiskSize:x})";
            return HeaderError.InvalidSize;
        }

        header = new VdiHeader
        {
            Version = BinaryPrimitives.ReadUInt32LittleEndian(data[VersionOffset..]),
            HeaderSize = BinaryPrimitives.ReadUInt32LittleEndian(data[HeaderSizeOffset..]),
            ImageType = (VdiImageType)BinaryPrimitives.ReadUInt32LittleEndian(data[ImageTypeOffset..]),
            ImageFlags = BinaryPrimitives.ReadUInt32LittleEndian(data[ImageFlagsOffset..]),
            OffsetBmap = BinaryPrimitives.ReadUInt32LittleEndian(data[OffsetBmapOffset..]),
            OffsetData = BinaryPrimitives.ReadUInt32LittleEndian(data[OffsetDataOffset..]),
            SectorSize = BinaryPrimitives.ReadUInt32LittleEndian(data[SectorSizeOffset..]),
            DiskSize = diskSize,
            BlockSize = BinaryPrimitives.ReadUInt32LittleEndian(data[BlockSizeOffset..]),
            BlockExtra = BinaryPrimitives.ReadUInt32LittleEndian(data[BlockExtraOffset..]),
            BlocksInImage = BinaryPrimitives.ReadUInt32LittleEndian(data[BlocksInImageOffset..]),
            BlocksAllocated = BinaryPrimitives.ReadUInt32LittleEndian(data[BlocksAllocatedOffset..]),
            ImageUuid = new Guid(data.Slice(UuidImageOffset, UuidLength)),
            LastSnapshotUuid = new Guid(data.Slice(UuidLastSnapOffset, UuidLength)),
            LinkUuid = new Guid(data.Slice(UuidLinkOffset, UuidLength)),
            ParentUuid = new Guid(data.Slice(UuidParentOffset, UuidLength)),
        };

        uint signature = BinaryPrimitives.ReadUInt32LittleEndian(data[SignatureOffset..]);
        HeaderError error = HeaderError.None;
        ulong roundedSize = (diskSize + VdiLayout.SectorSize - 1) & ~(ulong)(VdiLayout.SectorSize - 1);
        if (signature != Signature)
        {
            (error, message) = (HeaderError.BadMagic, $"Image not in VDI format (bad signature {signature:x8})");
        }
        else if (header.Version != Version11)
        {
            (error, message) = (HeaderError.UnsupportedVersion, $"unsupported VDI image (version {header.Version >> 16}.{header.Version & 0xFFFF})");
        }
        else if (header.OffsetBmap % VdiLayout.SectorSize != 0)
        {
            (error, message) = (HeaderError.InvalidOffset, $"unsupported VDI image (unaligned block map offset 0x{header.OffsetBmap:x})");
        }
        else if (header.OffsetData % VdiLayout.SectorSize != 0)
        {
            (error, message) = (HeaderError.InvalidOffset, $"unsupported VDI image (unaligned data offset 0x{header.OffsetData:x})");
        }
        else if (header.SectorSize != VdiLayout.SectorSize)
        {
            (error, message) = (HeaderError.InvalidSize, $"unsupported VDI image (sector size {header.SectorSize} is not {VdiLayout.SectorSize})");
        }
        else if (header.BlockSize != VdiLayout.BlockSize)
        {
            (error, message) = (HeaderError.InvalidSize, $"unsupported VDI image (block size {header.BlockSize} is not {VdiLayout.BlockSize})");
        }
        else if (roundedSize > (ulong)header.BlocksInImage * header.BlockSize)
        {
            (error, message) = (HeaderError.InvalidSize, $"unsupported VDI image (disk size {roundedSize}, image bitmap has room for {(ulong)header.BlocksInImage * header.BlockSize})");
        }
        else if (header.LinkUuid != Guid.Empty)
        {
            (error, message) = (HeaderError.UnsupportedFeature, "unsupported VDI image (non-NULL link UUID)");
        }
        else if (header.BlocksInImage > MaxBlocksInImage)
        {
            (error, message) = (HeaderError.InvalidSize, $"unsupported VDI image (too many blocks {header.BlocksInImage}, max is {MaxBlocksInImage})");
        }

        if (error != HeaderError.None)
        {
            header = default;
        }

        return error;
    }

    [DoesNotReturn]
    private static void Throw(HeaderError error, string message) => throw new ImageFormatException(error, message);
}
