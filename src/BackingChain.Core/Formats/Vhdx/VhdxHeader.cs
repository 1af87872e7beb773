using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Vhdx.VhdxLayout;

namespace BackingChain.Formats.Vhdx;

/// <summary>
/// One of the two 4 KiB VHDX headers (at 64 KiB and 128 KiB). A header is valid when its signature is
/// "head", its CRC-32C matches and its version is 1; of two valid headers the one with the larger sequence
/// number is current ([MS-VHDX] 2.2.2; qemu 7.2 <c>vhdx_parse_header</c>).
/// </summary>
/// <remarks>Parsing allocates nothing.</remarks>
internal readonly struct VhdxHeader
{
    /// <summary>Gets the stored CRC-32C.</summary>
    public uint Checksum { get; internal init; }

    /// <summary>Gets the sequence number; the valid header with the larger one is current.</summary>
    public ulong SequenceNumber { get; internal init; }

    /// <summary>Gets the GUID changed on the first write to the file after it is opened.</summary>
    public Guid FileWriteGuid { get; internal init; }

    /// <summary>Gets the GUID changed on the first guest-visible write; a child's <c>parent_linkage</c> names it.</summary>
    public Guid DataWriteGuid { get; internal init; }

    /// <summary>Gets the log GUID; empty when there is no log to replay.</summary>
    public Guid LogGuid { get; internal init; }

    /// <summary>Gets the log format version (0).</summary>
    public ushort LogVersion { get; internal init; }

    /// <summary>Gets the header version (1).</summary>
    public ushort Version { get; internal init; }

    /// <summary>Gets the log's length in bytes (a multiple of 1 MiB).</summary>
    public uint LogLength { get; internal init; }

    /// <summary>Gets the log's file offset (a multiple of 1 MiB).</summary>
    public ulong LogOffset { get; internal init; }

    /// <summary>Parses a header; never throws for bad data.</summary>
    /// <param name="data">The 4096 bytes of the header block.</param>
    /// <param name="header">The header, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the header is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out VhdxHeader header, out HeaderError error)
    {
        error = Read(data, out header);
        return error == HeaderError.None;
    }

    /// <summary>Parses a header.</summary>
    /// <param name="data">The 4096 bytes of the header block.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid VHDX header.</exception>
    public static VhdxHeader Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out VhdxHeader header);
        if (error != HeaderError.None)
        {
            Throw(error);
        }

        return header;
    }

    /// <summary>The one parsing core.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out VhdxHeader header)
    {
        header = default;
        if (data.Length < HeaderSize)
        {
            return HeaderError.Truncated;
        }

        data = data[..HeaderSize];
        uint checksum = BinaryPrimitives.ReadUInt32LittleEndian(data[HeaderChecksumOffset..]);
        if (Crc32C.ComputeSkipping(data, HeaderChecksumOffset) != checksum)
        {
            return HeaderError.BadChecksum;
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(data[HeaderSignatureOffset..]) != HeaderSignature)
        {
            return HeaderError.BadMagic;
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(data[VersionOffset..]);
        if (version != SupportedVersion)
        {
            return HeaderError.UnsupportedVersion;
        }

        header = new VhdxHeader
        {
            Checksum = checksum,
            SequenceNumber = BinaryPrimitives.ReadUInt64LittleEndian(data[SequenceNumberOffset..]),
            FileWriteGuid = new Guid(data.Slice(FileWriteGuidOffset, GuidLength)),
            DataWriteGuid = new Guid(data.Slice(DataWriteGuidOffset, GuidLength)),
            LogGuid = new Guid(data.Slice(LogGuidOffset, GuidLength)),
            LogVersion = BinaryPrimitives.ReadUInt16LittleEndian(data[LogVersionOffset..]),
            Version = version,
            LogLength = BinaryPrimitives.ReadUInt32LittleEndian(data[LogLengthOffset..]),
            LogOffset = BinaryPrimitives.ReadUInt64LittleEndian(data[LogOffsetOffset..]),
        };
        return HeaderError.None;
    }

    [DoesNotReturn]
    private static void Throw(HeaderError error) => throw new ImageFormatException(error, "No valid VHDX header found");
}
