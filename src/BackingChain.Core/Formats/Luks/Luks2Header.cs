using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using static BackingChain.Formats.Luks.Luks2Layout;

namespace BackingChain.Formats.Luks;

/// <summary>
/// A LUKS2 binary header (primary "LUKS\xBA\xBE" or secondary "SKUL\xBA\xBE", version 2). qemu 7.2 does not
/// support LUKS2: its probe sees raw and <c>-f luks</c> fails; this type lets detection name it.
/// </summary>
/// <remarks>
/// Parsing checks the header size against cryptsetup's allowed values (16 KiB to 4 MiB, a power of two), so
/// the JSON area it describes is bounded; it allocates nothing. The JSON itself is not parsed.
/// </remarks>
internal readonly struct Luks2Header
{
    /// <summary>Gets whether this is the secondary header copy ("SKUL").</summary>
    public bool IsSecondary { get; internal init; }

    /// <summary>Gets the size of the whole header area (binary header and JSON area) in bytes.</summary>
    public ulong HeaderSize { get; internal init; }

    /// <summary>Gets the sequence id; the copy with the larger one is current.</summary>
    public ulong SequenceId { get; internal init; }

    /// <summary>Gets the offset of this header copy from the start of the device (0 for the primary).</summary>
    public ulong HeaderOffset { get; internal init; }

    /// <summary>Gets where the JSON area lies relative to the header: from 4096 to <see cref="HeaderSize"/>.</summary>
    public Range JsonArea => new(BinaryHeaderSize, (int)HeaderSize);

    /// <summary>Decodes the volume UUID.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <returns>The UUID text.</returns>
    public static string GetUuid(ReadOnlySpan<byte> data) => Text(data.Slice(UuidOffset, UuidLength));

    /// <summary>Decodes the label.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <returns>The label (possibly empty).</returns>
    public static string GetLabel(ReadOnlySpan<byte> data) => Text(data.Slice(LabelOffset, LabelLength));

    /// <summary>Decodes the checksum algorithm (for example <c>"sha256"</c>).</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <returns>The algorithm name.</returns>
    public static string GetChecksumAlgorithm(ReadOnlySpan<byte> data) => Text(data.Slice(ChecksumAlgorithmOffset, ChecksumAlgorithmLength));

    /// <summary>
    /// Checks the header checksum: the digest of the whole header area with the checksum field zeroed. Only
    /// <c>sha256</c> (cryptsetup's default) is checked; other algorithms return <see langword="false"/>.
    /// </summary>
    /// <param name="headerArea">The <see cref="HeaderSize"/> bytes of the header area.</param>
    /// <returns><see langword="true"/> when the stored SHA-256 matches.</returns>
    public bool VerifyChecksum(ReadOnlySpan<byte> headerArea)
    {
        if ((ulong)headerArea.Length < HeaderSize || GetChecksumAlgorithm(headerArea) != "sha256")
        {
            return false;
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(headerArea[..ChecksumOffset]);
        hash.AppendData(new byte[ChecksumLength]);
        hash.AppendData(headerArea[(ChecksumOffset + ChecksumLength)..(int)HeaderSize]);
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        hash.GetHashAndReset(digest);
        return digest.SequenceEqual(headerArea.Slice(ChecksumOffset, SHA256.HashSizeInBytes));
    }

    /// <summary>Parses a LUKS2 binary header; never throws for bad data.</summary>
    /// <param name="data">At least the 4096 bytes of the binary header.</param>
    /// <param name="header">The header, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the header is a LUKS2 header.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out Luks2Header header, out HeaderError error)
    {
        error = Read(data, out header);
        return error == HeaderError.None;
    }

    /// <summary>Parses a LUKS2 binary header.</summary>
    /// <param name="data">At least the 4096 bytes of the binary header.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a LUKS2 header.</exception>
    public static Luks2Header Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out Luks2Header header);
        if (error != HeaderError.None)
        {
            Throw(error);
        }

        return header;
    }

    /// <summary>The one parsing core.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out Luks2Header header)
    {
        header = default;
        if (data.Length < BinaryHeaderSize)
        {
            return HeaderError.Truncated;
        }

        bool primary = data.StartsWith(LuksLayout.Magic);
        if (!primary && !data.StartsWith(SecondaryMagic))
        {
            return HeaderError.BadMagic;
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(data[VersionOffset..]) != SupportedVersion)
        {
            return HeaderError.UnsupportedVersion;
        }

        ulong size = BinaryPrimitives.ReadUInt64BigEndian(data[HeaderSizeOffset..]);
        if (size is < MinHeaderSize or > MaxHeaderSize || (size & (size - 1)) != 0)
        {
            return HeaderError.InvalidSize;
        }

        header = new Luks2Header
        {
            IsSecondary = !primary,
            HeaderSize = size,
            SequenceId = BinaryPrimitives.ReadUInt64BigEndian(data[SequenceIdOffset..]),
            HeaderOffset = BinaryPrimitives.ReadUInt64BigEndian(data[HeaderOffsetOffset..]),
        };
        return HeaderError.None;
    }

    private static string Text(ReadOnlySpan<byte> field) => CString.ToAsciiString(field);

    [DoesNotReturn]
    private static void Throw(HeaderError error) => throw new ImageFormatException(error, "Invalid LUKS2 header");
}
