using System;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using static BackingChain.Formats.Vmdk.VmdkLayout;

namespace BackingChain.Formats.Vmdk;

/// <summary>
/// A VMDK text descriptor, read the way qemu 7.2 reads it: <c>strstr</c> for <c>createType</c>, <c>CID</c>,
/// <c>parentCID</c> and <c>parentFileNameHint</c> (the first occurrence anywhere wins), and a <c>sscanf</c>
/// per line for the extents (<see cref="EnumerateExtents(ReadOnlySpan{byte})"/>).
/// </summary>
/// <remarks>
/// Parsing works on bytes and allocates nothing; values stay ranges into the text. The text is bounded as
/// qemu bounds it (1 MiB - 1; CIDs and the parent hint only within the first 20 sectors) and ends at its
/// first NUL byte.
/// </remarks>
internal readonly struct VmdkDescriptor
{
    private static ReadOnlySpan<byte> CreateTypeKey => "createType"u8;

    private static ReadOnlySpan<byte> CidKey => "CID"u8;

    private static ReadOnlySpan<byte> ParentCidKey => "parentCID"u8;

    private static ReadOnlySpan<byte> ParentHintKey => "parentFileNameHint"u8;

    /// <summary>The content ID.</summary>
    public uint Cid { get; internal init; }

    /// <summary>The parent's content ID (0xFFFFFFFF when there is no parent).</summary>
    public uint ParentCid { get; internal init; }

    /// <summary>Where the <c>createType</c> value lies in the text.</summary>
    public Range CreateTypeRange { get; internal init; }

    /// <summary>Where the <c>parentFileNameHint</c> value lies in the text (empty when there is none).</summary>
    public Range ParentFileNameHintRange { get; internal init; }

    /// <summary>The number of extents qemu would open.</summary>
    public int ExtentCount { get; internal init; }

    /// <summary>Whether the descriptor names a parent (an empty hint counts as none, as in qemu).</summary>
    public bool HasParent => ParentFileNameHintRange.End.Value > ParentFileNameHintRange.Start.Value;

    /// <summary>Decodes <c>createType</c>.</summary>
    /// <param name="text">The text that was parsed.</param>
    /// <returns>The create type.</returns>
    public string GetCreateType(ReadOnlySpan<byte> text) => Encoding.UTF8.GetString(text[CreateTypeRange]);

    /// <summary>Decodes <c>parentFileNameHint</c>.</summary>
    /// <param name="text">The text that was parsed.</param>
    /// <returns>The parent's file name as stored, or <see langword="null"/>.</returns>
    /// <exception cref="ImageFormatException"><see cref="HeaderError.InvalidText"/> when the stored bytes are not valid UTF-8: a name is never decoded lossily, so that it cannot mean another file than the one qemu opens.</exception>
    public string? GetParentFileNameHint(ReadOnlySpan<byte> text) =>
        HasParent ? CString.ToName(text[ParentFileNameHintRange], "parentFileNameHint") : null;

    /// <summary>Enumerates the extent lines qemu would open, without allocating.</summary>
    /// <param name="text">The descriptor text.</param>
    /// <returns>An enumerator of extent lines; check its <see cref="VmdkExtentEnumerator.Error"/> afterwards.</returns>
    internal static VmdkExtentEnumerator EnumerateExtents(ReadOnlySpan<byte> text) =>
        new(text.Length > MaxDescriptorLength ? text[..MaxDescriptorLength] : text);

    /// <summary>Parses a standalone descriptor file (or the text of a descriptor container); never throws for bad data.</summary>
    /// <param name="text">The start of the file (qemu reads at most 1 MiB - 1 bytes; more is ignored).</param>
    /// <param name="descriptor">The descriptor, when it is valid. This parameter is treated as uninitialized.</param>
    /// <param name="error">What is wrong, when it is not.</param>
    /// <returns><see langword="true"/> when qemu would accept the descriptor.</returns>
    public static bool TryParse(ReadOnlySpan<byte> text, out VmdkDescriptor descriptor, out HeaderError error)
    {
        error = Read(text, text, out descriptor, out _);
        return error == HeaderError.None;
    }

    /// <summary>Parses a standalone descriptor file.</summary>
    /// <param name="text">The start of the file.</param>
    /// <returns>The descriptor.</returns>
    /// <exception cref="ImageFormatException">qemu would reject the descriptor.</exception>
    public static VmdkDescriptor Parse(ReadOnlySpan<byte> text)
    {
        HeaderError error = Read(text, text, out VmdkDescriptor descriptor, out Range errorLine);
        if (error != HeaderError.None)
        {
            ThrowInvalid(error, Describe(error, text, errorLine));
        }

        return descriptor;
    }

    /// <summary>
    /// The one parsing core. <paramref name="body"/> holds createType and the extent lines;
    /// <paramref name="identity"/> holds CID, parentCID and parentFileNameHint (for a standalone file the two
    /// are the same text; for a descriptor container qemu reads the identity from 0x200 whatever the header says).
    /// Ranges in the result point into <paramref name="body"/>, except the parent hint, which points into
    /// <paramref name="identity"/>.
    /// </summary>
    internal static HeaderError Read(ReadOnlySpan<byte> body, ReadOnlySpan<byte> identity, out VmdkDescriptor descriptor, out Range errorLine)
    {
        descriptor = default;
        errorLine = default;
        ReadOnlySpan<byte> text = CString.Of(body.Length > MaxDescriptorLength ? body[..MaxDescriptorLength] : body);

        // "invalid VMDK image descriptor" / "Unsupported image type '...'"
        HeaderError error = ReadCreateType(text, out Range createType);
        if (error != HeaderError.None)
        {
            return error;
        }

        if (!IsDescriptorFileCreateType(text[createType]))
        {
            descriptor = new VmdkDescriptor { CreateTypeRange = createType };
            return HeaderError.UnsupportedFeature;
        }

        // "Invalid extent line: ..."
        int extents = 0;
        VmdkExtentEnumerator enumerator = EnumerateExtents(text);
        while (enumerator.MoveNext())
        {
            // Counted before anything is opened: past the cap the descriptor is refused as a whole.
            if (++extents > MaxExtents)
            {
                errorLine = new Range(enumerator.Current.LineStart, enumerator.Current.LineStart);
                return HeaderError.InvalidSize;
            }
        }

        if (enumerator.Error != HeaderError.None)
        {
            errorLine = enumerator.ErrorLine;
            return enumerator.Error;
        }

        error = ReadIdentity(identity, out uint cid, out uint parentCid, out Range hint);
        if (error != HeaderError.None)
        {
            return error;
        }

        // qemu 7.2 opens a descriptor without usable extents, then aborts on an assertion in vmdk_get_info.
        if (extents == 0)
        {
            return HeaderError.Inconsistent;
        }

        descriptor = new VmdkDescriptor
        {
            Cid = cid,
            ParentCid = parentCid,
            CreateTypeRange = createType,
            ParentFileNameHintRange = hint,
            ExtentCount = extents,
        };
        return HeaderError.None;
    }

    /// <summary>
    /// vmdk_parent_open and vmdk_read_cid on the 20 sectors of descriptor qemu reads (at 0 for a descriptor
    /// file, at 0x200 for a sparse file). The hint range points into <paramref name="window"/>.
    /// </summary>
    internal static HeaderError ReadIdentity(ReadOnlySpan<byte> window, out uint cid, out uint parentCid, out Range hint)
    {
        cid = 0;
        parentCid = 0;
        hint = default;
        if (window.Length > DescriptorWindowLength)
        {
            window = window[..DescriptorWindowLength];
        }

        // parentFileNameHint: qemu skips the key and two more characters (=") without looking at them,
        // then takes everything up to the next quote; a NUL first, or more than 4095 bytes, is an error.
        ReadOnlySpan<byte> hintText = CString.Of(window);
        int key = hintText.IndexOf(ParentHintKey);
        if (key >= 0)
        {
            int start = key + ParentHintKey.Length + 2;
            int end = start;
            while (end < window.Length && window[end] is not ((byte)'"' or 0))
            {
                end++;
            }

            if (end >= window.Length || window[end] == 0)
            {
                return HeaderError.InvalidText;
            }

            if (end - start > MaxParentFileNameHintLength)
            {
                return HeaderError.InvalidSize;
            }

            hint = new Range(start, end);
        }

        // qemu forces a NUL at the last byte of the window it reads CIDs from. That window is a prefix of the
        // hint's, so its C string is the hint text cut to the same length: no second NUL scan.
        ReadOnlySpan<byte> cidWindow = window[..Math.Min(window.Length, DescriptorWindowLength - 1)];
        ReadOnlySpan<byte> cidText = hintText[..Math.Min(hintText.Length, cidWindow.Length)];
        if (!TryReadCid(cidWindow, cidText, CidKey, out cid) || !TryReadCid(cidWindow, cidText, ParentCidKey, out parentCid))
        {
            return HeaderError.InvalidText;
        }

        return HeaderError.None;
    }

    /// <summary>vmdk_parse_description for createType: skip the key and two characters, then up to the next quote.</summary>
    internal static HeaderError ReadCreateType(ReadOnlySpan<byte> text, out Range value)
    {
        value = default;
        int key = text.IndexOf(CreateTypeKey);
        if (key < 0)
        {
            return HeaderError.InvalidText;
        }

        int start = key + CreateTypeKey.Length + 2;
        if (start >= text.Length)
        {
            return HeaderError.InvalidText;
        }

        int quote = text[start..].IndexOf((byte)'"');
        if (quote < 0 || quote > MaxCreateTypeLength)
        {
            return HeaderError.InvalidText;
        }

        value = new Range(start, start + quote);
        return HeaderError.None;
    }

    /// <summary>The create types qemu accepts for a descriptor file (sparse files set their own).</summary>
    internal static bool IsDescriptorFileCreateType(ReadOnlySpan<byte> createType) =>
        createType.SequenceEqual("monolithicFlat"u8)
        || createType.SequenceEqual("vmfs"u8)
        || createType.SequenceEqual("vmfsSparse"u8)
        || createType.SequenceEqual("seSparse"u8)
        || createType.SequenceEqual("twoGbMaxExtentSparse"u8)
        || createType.SequenceEqual("twoGbMaxExtentFlat"u8);

    /// <summary>Describes an error the way qemu words the matching open failure.</summary>
    internal static string Describe(HeaderError error, ReadOnlySpan<byte> text, Range errorLine) => error switch
    {
        HeaderError.UnsupportedFeature when ReadCreateType(CString.Of(text), out Range type) == HeaderError.None =>
            $"Unsupported image type '{Encoding.UTF8.GetString(CString.Of(text)[type])}'",
        HeaderError.InvalidText when errorLine.End.Value > errorLine.Start.Value =>
            $"Invalid extent line: {Encoding.UTF8.GetString(CString.Of(text)[errorLine])}",
        HeaderError.InvalidSize when errorLine.Start.Value > 0 => $"Invalid VMDK descriptor: more than {MaxExtents} extents",
        HeaderError.InvalidSize => "Invalid VMDK descriptor: parentFileNameHint is too long",
        HeaderError.Inconsistent => "Invalid VMDK descriptor: no usable extent (qemu 7.2 aborts on such a descriptor)",
        _ => "invalid VMDK image descriptor",
    };

    /// <summary>
    /// vmdk_read_cid: the first occurrence of the key (so "CID" may be found inside "parentCID"), skip it
    /// and one more character, then sscanf %x: optional whitespace, sign and 0x, at least one hex digit.
    /// The scan may run past the text's NUL into the rest of the window, as qemu's does.
    /// <paramref name="windowText"/> is the window up to its first NUL, where the key is looked for.
    /// </summary>
    private static bool TryReadCid(ReadOnlySpan<byte> window, ReadOnlySpan<byte> windowText, ReadOnlySpan<byte> keyName, out uint value)
    {
        value = 0;
        int key = windowText.IndexOf(keyName);
        if (key < 0)
        {
            return false;
        }

        int p = key + keyName.Length + 1;
        while (p < window.Length && VmdkExtentEnumerator.IsSpace(window[p]))
        {
            p++;
        }

        bool negative = false;
        if (p < window.Length && window[p] is (byte)'+' or (byte)'-')
        {
            negative = window[p] == (byte)'-';
            p++;
        }

        if (p + 2 < window.Length && window[p] == (byte)'0' && window[p + 1] is (byte)'x' or (byte)'X' && IsHexDigit(window[p + 2]))
        {
            p += 2;
        }

        int digits = 0;
        ulong accumulated = 0;
        bool overflow = false;
        while (p < window.Length && IsHexDigit(window[p]))
        {
            if (accumulated > ulong.MaxValue >> 4)
            {
                overflow = true;
            }

            accumulated = (accumulated << 4) | HexValue(window[p]);
            digits++;
            p++;
        }

        if (digits == 0)
        {
            return false;
        }

        // strtoul saturates on overflow and negates a '-' value; the result is then stored in 32 bits.
        ulong result = overflow ? ulong.MaxValue : negative ? unchecked(0 - accumulated) : accumulated;
        value = unchecked((uint)result);
        return true;
    }

    private static bool IsHexDigit(byte b) => b is (>= (byte)'0' and <= (byte)'9') or (>= (byte)'a' and <= (byte)'f') or (>= (byte)'A' and <= (byte)'F');

    private static ulong HexValue(byte b) => b switch
    {
        <= (byte)'9' => (ulong)(b - '0'),
        <= (byte)'F' => (ulong)(b - 'A' + 10),
        _ => (ulong)(b - 'a' + 10),
    };

    [DoesNotReturn]
    private static void ThrowInvalid(HeaderError error, string message) =>
        throw new ImageFormatException(error, message);
}
