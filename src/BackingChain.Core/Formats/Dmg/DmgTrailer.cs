using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Dmg.DmgLayout;

namespace BackingChain.Formats.Dmg;

/// <summary>
/// The UDIF trailer ("koly" block) of an Apple disk image: the only structure that identifies a DMG, found near
/// the end of the file (qemu 7.2 has no content probe for it, only the <c>.dmg</c> file name).
/// </summary>
/// <remarks>Parsing allocates nothing.</remarks>
internal readonly struct DmgTrailer
{
    /// <summary>Gets the trailer version (4).</summary>
    public uint Version { get; internal init; }

    /// <summary>Gets the trailer's declared size (512).</summary>
    public uint HeaderSize { get; internal init; }

    /// <summary>Gets the data fork's offset.</summary>
    public ulong DataForkOffset { get; internal init; }

    /// <summary>Gets the data fork's length.</summary>
    public ulong DataForkLength { get; internal init; }

    /// <summary>Gets the resource fork's offset.</summary>
    public ulong ResourceForkOffset { get; internal init; }

    /// <summary>Gets the resource fork's length (0 when the tables are in the XML property list).</summary>
    public ulong ResourceForkLength { get; internal init; }

    /// <summary>Gets the XML property list's offset.</summary>
    public ulong XmlOffset { get; internal init; }

    /// <summary>Gets the XML property list's length.</summary>
    public ulong XmlLength { get; internal init; }

    /// <summary>Gets the virtual disk size in sectors.</summary>
    public ulong SectorCount { get; internal init; }

    /// <summary>
    /// Finds "koly" as qemu does: the first match in the 515 bytes that start 1023 bytes before the end of the
    /// file (its length rounded up to whole sectors).
    /// </summary>
    /// <param name="window">The bytes read at <paramref name="windowOffset"/> (zero-padded past the end).</param>
    /// <param name="windowOffset">Where the window starts in the file.</param>
    /// <returns>The trailer's file offset, or −1 when there is none.</returns>
    public static long FindTrailer(ReadOnlySpan<byte> window, long windowOffset)
    {
        int index = window.IndexOf("koly"u8);
        return index < 0 ? -1 : windowOffset + index;
    }

    /// <summary>The window qemu searches for a file of <paramref name="fileLength"/> bytes.</summary>
    /// <param name="fileLength">The file length.</param>
    /// <returns>The window's offset and length.</returns>
    public static (long Offset, int Length) GetSearchWindow(long fileLength)
    {
        long length = HeaderReads.RoundedLength(fileLength);
        const int LastSectorPart = SearchWindow - 4; // 511 bytes of the second-last sector
        long offset = length > LastSectorPart + TrailerSize ? length - LastSectorPart - TrailerSize : 0;
        return (offset, (int)Math.Min(length, SearchWindow));
    }

    /// <summary>Parses a trailer; never throws for bad data.</summary>
    /// <param name="data">The 512 bytes starting at "koly".</param>
    /// <param name="trailer">The trailer, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the bytes are a "koly" trailer.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out DmgTrailer trailer, out HeaderError error)
    {
        error = Read(data, out trailer);
        return error == HeaderError.None;
    }

    /// <summary>Parses a trailer.</summary>
    /// <param name="data">The 512 bytes starting at "koly".</param>
    /// <returns>The trailer.</returns>
    /// <exception cref="ImageFormatException">The data is not a "koly" trailer.</exception>
    public static DmgTrailer Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out DmgTrailer trailer);
        if (error != HeaderError.None)
        {
            Throw(error);
        }

        return trailer;
    }

    /// <summary>
    /// qemu's checks that need the trailer's position: the data fork, resource fork and property list lie before
    /// it, and the sector count is a non-negative int64.
    /// </summary>
    internal HeaderError Validate(long trailerOffset)
    {
        ulong at = (ulong)trailerOffset;
        if (DataForkOffset > at
            || ResourceForkOffset >= at || ResourceForkLength > at - ResourceForkOffset
            || XmlOffset >= at || XmlLength > at - XmlOffset)
        {
            return HeaderError.InvalidOffset;
        }

        return SectorCount > long.MaxValue / 512 ? HeaderError.InvalidSize : HeaderError.None;
    }

    /// <summary>The one parsing core.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out DmgTrailer trailer)
    {
        trailer = default;
        if (data.Length < TrailerSize)
        {
            return HeaderError.Truncated;
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(data[SignatureOffset..]) != TrailerSignature)
        {
            return HeaderError.BadMagic;
        }

        trailer = new DmgTrailer
        {
            Version = BinaryPrimitives.ReadUInt32BigEndian(data[VersionOffset..]),
            HeaderSize = BinaryPrimitives.ReadUInt32BigEndian(data[HeaderSizeOffset..]),
            DataForkOffset = BinaryPrimitives.ReadUInt64BigEndian(data[DataForkOffsetOffset..]),
            DataForkLength = BinaryPrimitives.ReadUInt64BigEndian(data[DataForkLengthOffset..]),
            ResourceForkOffset = BinaryPrimitives.ReadUInt64BigEndian(data[RsrcForkOffsetOffset..]),
            ResourceForkLength = BinaryPrimitives.ReadUInt64BigEndian(data[RsrcForkLengthOffset..]),
            XmlOffset = BinaryPrimitives.ReadUInt64BigEndian(data[XmlOffsetOffset..]),
            XmlLength = BinaryPrimitives.ReadUInt64BigEndian(data[XmlLengthOffset..]),
            SectorCount = BinaryPrimitives.ReadUInt64BigEndian(data[SectorCountOffset..]),
        };
        return HeaderError.None;
    }

    [DoesNotReturn]
    private static void Throw(HeaderError error) => throw new ImageFormatException(error, "Invalid UDIF trailer");
}
