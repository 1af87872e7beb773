using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using static BackingChain.Formats.Vhdx.VhdxLayout;

namespace BackingChain.Formats.Vhdx;

/// <summary>
/// The parent locator metadata item of a differencing VHDX ([MS-VHDX] 2.6.2.6): a locator type and
/// UTF-16LE key/value pairs such as <c>parent_linkage</c>, <c>relative_path</c>, <c>volume_path</c> and
/// <c>absolute_win32_path</c>. qemu 7.2 refuses differencing VHDX files; this library reads them.
/// </summary>
/// <remarks>
/// Parsing validates every entry (offsets and lengths inside the item, non-zero, even) and allocates nothing;
/// values become strings only through <see cref="GetValue"/>.
/// </remarks>
internal readonly struct VhdxParentLocator
{
    /// <summary>The key holding the parent's DataWriteGuid.</summary>
    public const string ParentLinkageKey = "parent_linkage";

    /// <summary>The key of the alternative parent identity used during merges.</summary>
    public const string ParentLinkage2Key = "parent_linkage2";

    /// <summary>The key of the parent's path relative to the child (tried first).</summary>
    public const string RelativePathKey = "relative_path";

    /// <summary>The key of the parent's volume GUID path (tried second).</summary>
    public const string VolumePathKey = "volume_path";

    /// <summary>The key of the parent's absolute Win32 path (tried third).</summary>
    public const string AbsoluteWin32PathKey = "absolute_win32_path";

    /// <summary>Gets the locator type (<c>B04AEFB7-D19E-4A81-B789-25B8E9445913</c> for VHDX parents).</summary>
    public Guid LocatorType { get; internal init; }

    /// <summary>Gets the number of key/value entries.</summary>
    public int KeyValueCount { get; internal init; }

    /// <summary>Gets whether the locator type is the one [MS-VHDX] defines for VHDX parents.</summary>
    public bool IsVhdxLocator => LocatorType == VhdxParentLocatorType;

    /// <summary>Finds <paramref name="key"/> (case-sensitive) and decodes its value.</summary>
    /// <param name="data">The buffer that was parsed (the whole locator item).</param>
    /// <param name="key">The key, for example <see cref="RelativePathKey"/>.</param>
    /// <returns>The value, or <see langword="null"/> when the key is absent or its value is not valid UTF-16.</returns>
    public string? GetValue(ReadOnlySpan<byte> data, string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        for (int i = 0; i < KeyValueCount; i++)
        {
            ReadEntry(data, i, out int keyOffset, out int keyLength, out int valueOffset, out int valueLength);
            if (KeyEquals(data.Slice(keyOffset, keyLength), key))
            {
                return Utf16Names.TryDecode(data.Slice(valueOffset, valueLength), bigEndian: false, allowTrailingNul: false, out string? value) is null ? value : null;
            }
        }

        return null;
    }

    /// <summary>Like <see cref="GetValue(ReadOnlySpan{byte}, string)"/>, but says why a present value is not a valid path.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <param name="key">The key.</param>
    /// <param name="value">The value, or <see langword="null"/> when the key is absent.</param>
    /// <returns>Why the value is not valid ("contains a NUL character"), or <see langword="null"/>.</returns>
    internal string? TryGetValue(ReadOnlySpan<byte> data, string key, out string? value)
    {
        value = null;
        for (int i = 0; i < KeyValueCount; i++)
        {
            ReadEntry(data, i, out int keyOffset, out int keyLength, out int valueOffset, out int valueLength);
            if (KeyEquals(data.Slice(keyOffset, keyLength), key))
            {
                // Values are exactly sized: any NUL is smuggled, not padding.
                return Utf16Names.TryDecode(data.Slice(valueOffset, valueLength), bigEndian: false, allowTrailingNul: false, out value);
            }
        }

        return null;
    }

    /// <summary>Parses a parent locator item; never throws for bad data.</summary>
    /// <param name="data">The item's bytes (its metadata table entry's length).</param>
    /// <param name="locator">The locator, when valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when the locator is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> data, out VhdxParentLocator locator, out HeaderError error)
    {
        error = Read(data, out locator);
        return error == HeaderError.None;
    }

    /// <summary>Parses a parent locator item.</summary>
    /// <param name="data">The item's bytes.</param>
    /// <returns>The locator.</returns>
    /// <exception cref="ImageFormatException">The data is not a valid parent locator.</exception>
    public static VhdxParentLocator Parse(ReadOnlySpan<byte> data)
    {
        HeaderError error = Read(data, out VhdxParentLocator locator);
        if (error != HeaderError.None)
        {
            Throw(error);
        }

        return locator;
    }

    /// <summary>The one parsing core.</summary>
    internal static HeaderError Read(ReadOnlySpan<byte> data, out VhdxParentLocator locator)
    {
        locator = default;
        if (data.Length < LocatorEntriesOffset)
        {
            return HeaderError.Truncated;
        }

        if (data.Length > MaxMetadataItemLength)
        {
            return HeaderError.InvalidSize;
        }

        int count = BinaryPrimitives.ReadUInt16LittleEndian(data[LocatorKeyValueCountOffset..]);
        if (count > (data.Length - LocatorEntriesOffset) / LocatorEntrySize)
        {
            return HeaderError.Truncated;
        }

        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> entry = data.Slice(LocatorEntriesOffset + (i * LocatorEntrySize), LocatorEntrySize);
            uint keyOffset = BinaryPrimitives.ReadUInt32LittleEndian(entry[LocatorKeyOffsetOffset..]);
            uint valueOffset = BinaryPrimitives.ReadUInt32LittleEndian(entry[LocatorValueOffsetOffset..]);
            int keyLength = BinaryPrimitives.ReadUInt16LittleEndian(entry[LocatorKeyLengthOffset..]);
            int valueLength = BinaryPrimitives.ReadUInt16LittleEndian(entry[LocatorValueLengthOffset..]);

            // "All offsets and lengths are in bytes and must be greater than zero" and inside the item; UTF-16 is even.
            if (keyLength == 0 || valueLength == 0 || (keyLength & 1) != 0 || (valueLength & 1) != 0
                || keyOffset > (uint)data.Length || (uint)keyLength > (uint)data.Length - keyOffset
                || valueOffset > (uint)data.Length || (uint)valueLength > (uint)data.Length - valueOffset)
            {
                return HeaderError.InvalidOffset;
            }
        }

        locator = new VhdxParentLocator
        {
            LocatorType = new Guid(data.Slice(LocatorTypeOffset, GuidLength)),
            KeyValueCount = count,
        };
        return HeaderError.None;
    }

    private static void ReadEntry(ReadOnlySpan<byte> data, int index, out int keyOffset, out int keyLength, out int valueOffset, out int valueLength)
    {
        ReadOnlySpan<byte> entry = data.Slice(LocatorEntriesOffset + (index * LocatorEntrySize), LocatorEntrySize);
        keyOffset = (int)BinaryPrimitives.ReadUInt32LittleEndian(entry[LocatorKeyOffsetOffset..]);
        valueOffset = (int)BinaryPrimitives.ReadUInt32LittleEndian(entry[LocatorValueOffsetOffset..]);
        keyLength = BinaryPrimitives.ReadUInt16LittleEndian(entry[LocatorKeyLengthOffset..]);
        valueLength = BinaryPrimitives.ReadUInt16LittleEndian(entry[LocatorValueLengthOffset..]);
    }

    private static bool KeyEquals(ReadOnlySpan<byte> utf16, string key)
    {
        if (utf16.Length != key.Length * 2)
        {
            return false;
        }

        for (int i = 0; i < key.Length; i++)
        {
            if (BinaryPrimitives.ReadUInt16LittleEndian(utf16[(2 * i)..]) != key[i])
            {
                return false;
            }
        }

        return true;
    }

    [DoesNotReturn]
    private static void Throw(HeaderError error) => throw new ImageFormatException(error, "Invalid VHDX parent locator");
}
