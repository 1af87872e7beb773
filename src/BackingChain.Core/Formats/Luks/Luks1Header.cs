using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Luks.LuksLayout;

namespace BackingChain.Formats.Luks;

/// <summary>
/// A LUKS1 header (592 bytes, big-endian): cipher, hash, payload offset and key slots. No key is needed
/// to read it. Text fields stay in the buffer until asked for.
/// </summary>
internal readonly struct Luks1Header
{
    /// <summary>The LUKS version (1).</summary>
    public ushort Version { get; internal init; }

    /// <summary>Offset of the encrypted payload, in 512-byte sectors.</summary>
    public uint PayloadOffsetSectors { get; internal init; }

    /// <summary>Master key length in bytes.</summary>
    public uint KeyBytes { get; internal init; }

    /// <summary>PBKDF2 iterations of the master key digest.</summary>
    public uint MasterKeyDigestIterations { get; internal init; }

    /// <summary>Offset of the encrypted payload in bytes.</summary>
    public long PayloadOffset => (long)PayloadOffsetSectors * SectorSize;

    /// <summary>Gets key slot <paramref name="index"/> (0 to 7) from the parsed buffer.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <param name="index">The slot number.</param>
    /// <returns>The slot.</returns>
    public static LuksKeySlot GetKeySlot(ReadOnlySpan<byte> data, int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, KeySlotCount);
        ReadOnlySpan<byte> slot = data.Slice(KeySlotsOffset + index * KeySlotSize, KeySlotSize);
        return new LuksKeySlot(
            BinaryPrimitives.ReadUInt32BigEndian(slot[KeySlotActiveOffset..]) == KeySlotEnabled,
            BinaryPrimitives.ReadUInt32BigEndian(slot[KeySlotIterationsOffset..]),
            (long)BinaryPrimitives.ReadUInt32BigEndian(slot[KeySlotKeyMaterialOffsetOffset..]) * SectorSize,
            BinaryPrimitives.ReadUInt32BigEndian(slot[KeySlotStripesOffset..]));
    }

    /// <summary>The cipher name, e.g. <c>"aes"</c>.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <returns>The name.</returns>
    public static string GetCipherName(ReadOnlySpan<byte> data) => Field(data, CipherNameOffset, NameFieldLength);

    /// <summary>The cipher mode with its IV generator, e.g. <c>"xts-plain64"</c>.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <returns>The mode.</returns>
    public static string GetCipherMode(ReadOnlySpan<byte> data) => Field(data, CipherModeOffset, NameFieldLength);

    /// <summary>The hash, e.g. <c>"sha256"</c>.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <returns>The hash name.</returns>
    public static string GetHashSpec(ReadOnlySpan<byte> data) => Field(data, HashSpecOffset, NameFieldLength);

    /// <summary>The volume UUID as text.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <returns>The UUID.</returns>
    public static string GetUuid(ReadOnlySpan<byte> data) => Field(data, UuidOffset, UuidLength);

    /// <summary>
    /// Parses a LUKS1 header; never throws for bad data. Like qemu 7.2, a cipher name, cipher mode or hash field with
    /// no NUL within its 32 bytes is refused (<see cref="HeaderError.InvalidText"/>): qemu reads them as C strings.
    /// </summary>
    /// <param name="data">At least the first 592 bytes of the LUKS area.</param>
    /// <param name="header">The header.</param>
    /// <param name="error">What is wrong.</param>
    /// <returns><see langword="true"/> when the header is a valid LUKS1 header.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out Luks1Header header, out HeaderError error)
    {
        header = default;
        if (data.Length < HeaderLength)
        {
            error = HeaderError.Truncated;
            return false;
        }

        if (!data.StartsWith(Magic))
        {
            error = HeaderError.BadMagic;
            return false;
        }

        ushort version = BinaryPrimitives.ReadUInt16BigEndian(data[VersionOffset..]);
        if (version != 1)
        {
            error = HeaderError.UnsupportedVersion;
            return false;
        }

        if (UnterminatedField(data) is not null)
        {
            error = HeaderError.InvalidText;
            return false;
        }

        header = new Luks1Header
        {
            Version = version,
            PayloadOffsetSectors = BinaryPrimitives.ReadUInt32BigEndian(data[PayloadOffsetOffset..]),
            KeyBytes = BinaryPrimitives.ReadUInt32BigEndian(data[KeyBytesOffset..]),
            MasterKeyDigestIterations = BinaryPrimitives.ReadUInt32BigEndian(data[MasterKeyDigestIterationsOffset..]),
        };
        error = HeaderError.None;
        return true;
    }

    /// <summary>Parses a LUKS1 header.</summary>
    /// <param name="data">At least the first 592 bytes of the LUKS area.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ImageFormatException">The data is not a LUKS1 header.</exception>
    public static Luks1Header Parse(ReadOnlySpan<byte> data)
    {
        if (!TryParse(data, out Luks1Header header, out HeaderError error))
        {
            Throw(error);
        }

        return header;
    }

    /// <summary>
    /// The first of the three text fields qemu checks (cipher name, cipher mode, hash spec, in qemu's order) that has
    /// no NUL terminator, by qemu's name for it, or <see langword="null"/> when all three are terminated.
    /// </summary>
    internal static string? UnterminatedField(ReadOnlySpan<byte> data)
    {
        if (data.Slice(CipherNameOffset, NameFieldLength).IndexOf((byte)0) < 0)
        {
            return "cipher name";
        }

        if (data.Slice(CipherModeOffset, NameFieldLength).IndexOf((byte)0) < 0)
        {
            return "cipher mode";
        }

        return data.Slice(HashSpecOffset, NameFieldLength).IndexOf((byte)0) < 0 ? "hash spec" : null;
    }

    [DoesNotReturn]
    private static void Throw(HeaderError error) =>
        throw new ImageFormatException(error, error switch
        {
            HeaderError.UnsupportedVersion => "LUKS version is not supported",
            HeaderError.InvalidText => "LUKS header text field is not NUL terminated",
            _ => "Invalid LUKS header",
        });

    private static string Field(ReadOnlySpan<byte> data, int offset, int length) =>
        CString.ToAsciiString(data.Slice(offset, length));
}
