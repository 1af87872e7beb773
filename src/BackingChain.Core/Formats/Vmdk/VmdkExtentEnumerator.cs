using System;
using static BackingChain.Formats.Vmdk.VmdkLayout;

namespace BackingChain.Formats.Vmdk;

/// <summary>
/// Walks the extent lines of a descriptor as qemu 7.2's <c>vmdk_parse_extents</c> does: a <c>sscanf</c> of
/// <c>%10s %ld %10s "%511[^\n\r"]" %ld</c> from the start of every line. Like <c>sscanf</c>, a field may be
/// preceded by any whitespace, newlines included, so an empty line followed by an extent line yields that
/// extent twice, exactly as qemu adds it twice. Lines not starting with <c>RW</c>, with too few fields, a
/// non-positive size or an unknown type are skipped. Allocates nothing.
/// </summary>
internal ref struct VmdkExtentEnumerator
{
    private readonly ReadOnlySpan<byte> _text;
    private int _position;

    internal VmdkExtentEnumerator(ReadOnlySpan<byte> text)
    {
        // A C string: the text ends at its first NUL.
        _text = CString.Of(text);
        _position = 0;
        Current = default;
        Error = HeaderError.None;
        ErrorLine = default;
    }

    /// <summary>The extent line the enumerator is on.</summary>
    public VmdkExtentLine Current { get; private set; }

    /// <summary><see cref="HeaderError.InvalidText"/> when enumeration stopped at a malformed extent line ("Invalid extent line").</summary>
    public HeaderError Error { get; private set; }

    /// <summary>The malformed line (without its newline), when <see cref="Error"/> is set.</summary>
    public Range ErrorLine { get; private set; }

    /// <summary>Returns this enumerator, so that it can be used in a <see langword="foreach"/>.</summary>
    /// <returns>This enumerator.</returns>
    public readonly VmdkExtentEnumerator GetEnumerator() => this;

    /// <summary>Moves to the next extent qemu would open.</summary>
    /// <returns><see langword="false"/> at the end of the text or at a malformed line (see <see cref="Error"/>).</returns>
    public bool MoveNext()
    {
        while (_position < _text.Length)
        {
            // Only a line start whose first word (%10s, after any whitespace, newlines included) is exactly
            // "RW" can give an extent. Rather than visiting every line, jump to the next line start from which
            // only whitespace leads to an "RW": one vectorized search passes over comments and ddb.* lines.
            int lineStart = NextCandidate(_text, _position);
            if (lineStart < 0)
            {
                _position = _text.Length;
                return false;
            }

            _position = NextLine(_text, lineStart);
            if (!StartsWithRwWord(_text, lineStart))
            {
                continue;
            }

            int matches = Scan(_text, lineStart, out Range access, out long sectors, out Range type, out Range fileName, out long flatOffset);
            if (matches < 4 || !_text[access].SequenceEqual("RW"u8))
            {
                continue;
            }

            ReadOnlySpan<byte> typeName = _text[type];
            bool isFlat = typeName.SequenceEqual("FLAT"u8);
            bool isVmfs = typeName.SequenceEqual("VMFS"u8);
            bool invalid = isFlat ? matches != 5 || flatOffset < 0
                : isVmfs ? matches != 4
                : matches != 4;
            if (invalid)
            {
                Error = HeaderError.InvalidText;
                int end = _position > lineStart && _text[_position - 1] == (byte)'\n' ? _position - 1 : _position;
                ErrorLine = new Range(lineStart, end);
                _position = _text.Length;
                return false;
            }

            VmdkExtentType? known = isFlat ? VmdkExtentType.Flat
                : isVmfs ? VmdkExtentType.Vmfs
                : typeName.SequenceEqual("SPARSE"u8) ? VmdkExtentType.Sparse
                : typeName.SequenceEqual("VMFSSPARSE"u8) ? VmdkExtentType.VmfsSparse
                : typeName.SequenceEqual("SESPARSE"u8) ? VmdkExtentType.SeSparse
                : null;
            if (sectors <= 0 || known is null)
            {
                continue;
            }

            Current = new VmdkExtentLine
            {
                Sectors = sectors,
                Type = known.Value,
                FileNameRange = fileName,
                FlatOffset = isFlat ? flatOffset : 0,
                LineStart = lineStart,
            };
            return true;
        }

        return false;
    }

    /// <summary>
    /// The first line start at or after <paramref name="position"/> (itself a line start) from which only
    /// whitespace leads to an occurrence of "RW", or -1 when the rest of the text holds no such line start.
    /// Every line start skipped would have its first word differ from "RW", so skipping it changes nothing.
    /// </summary>
    private static int NextCandidate(ReadOnlySpan<byte> text, int position)
    {
        while (position < text.Length)
        {
            int found = text[position..].IndexOf("RW"u8);
            if (found < 0)
            {
                return -1;
            }

            int rw = position + found;
            int runStart = rw;
            while (runStart > position && IsSpace(text[runStart - 1]))
            {
                runStart--;
            }

            if (runStart == position)
            {
                return runStart;
            }

            // The run follows other text on its line; the first line start inside the run, if there is one
            // (the run includes newlines, as sscanf's whitespace does).
            int newline = text[runStart..rw].IndexOf((byte)'\n');
            if (newline >= 0)
            {
                return runStart + newline + 1;
            }

            // "RW" in the middle of a line: nothing from here to the end of that line can be an extent.
            position = NextLine(text, rw);
        }

        return -1;
    }

    /// <summary>Whether the first whitespace-delimited word at <paramref name="p"/> is exactly <c>RW</c>.</summary>
    private static bool StartsWithRwWord(ReadOnlySpan<byte> text, int p)
    {
        p = SkipSpace(text, p);
        return p + 1 < text.Length && text[p] == (byte)'R' && text[p + 1] == (byte)'W'
            && (p + 2 == text.Length || IsSpace(text[p + 2]));
    }

    /// <summary>next_line: just past the next newline, or the end of the text.</summary>
    private static int NextLine(ReadOnlySpan<byte> text, int position)
    {
        int newline = text[position..].IndexOf((byte)'\n');
        return newline < 0 ? text.Length : position + newline + 1;
    }

    /// <summary>
    /// <c>sscanf(p, "%10s %ld %10s \"%511[^\n\r\"]\" %ld", ...)</c>: the number of fields assigned, or -1
    /// when the input ends before the first one.
    /// </summary>
    internal static int Scan(ReadOnlySpan<byte> text, int p, out Range access, out long sectors, out Range type, out Range fileName, out long flatOffset)
    {
        access = default;
        sectors = 0;
        type = default;
        fileName = default;
        flatOffset = -1;

        p = SkipSpace(text, p);
        if (p >= text.Length)
        {
            return -1;
        }

        access = ReadWord(text, ref p, MaxAccessLength);
        if (!TryReadInt64(text, ref p, out sectors))
        {
            return 1;
        }

        p = SkipSpace(text, p);
        if (p >= text.Length)
        {
            return 2;
        }

        type = ReadWord(text, ref p, MaxTypeLength);
        p = SkipSpace(text, p);
        if (p >= text.Length || text[p] != (byte)'"')
        {
            return 3;
        }

        p++;
        int nameStart = p;
        while (p < text.Length && p - nameStart < MaxExtentFileNameLength && text[p] is not ((byte)'\n' or (byte)'\r' or (byte)'"'))
        {
            p++;
        }

        if (p == nameStart)
        {
            return 3;
        }

        fileName = new Range(nameStart, p);
        if (p >= text.Length || text[p] != (byte)'"')
        {
            return 4;
        }

        p++;
        return TryReadInt64(text, ref p, out flatOffset) ? 5 : 4;
    }

    /// <summary>%Ns: skip whitespace, then up to <paramref name="width"/> non-whitespace bytes.</summary>
    private static Range ReadWord(ReadOnlySpan<byte> text, ref int p, int width)
    {
        p = SkipSpace(text, p);
        int start = p;
        while (p < text.Length && p - start < width && !IsSpace(text[p]))
        {
            p++;
        }

        return new Range(start, p);
    }

    /// <summary>%ld: skip whitespace, an optional sign, at least one digit; saturates on overflow as strtol does.</summary>
    private static bool TryReadInt64(ReadOnlySpan<byte> text, ref int p, out long value)
    {
        value = 0;
        int i = SkipSpace(text, p);
        bool negative = false;
        if (i < text.Length && text[i] is (byte)'+' or (byte)'-')
        {
            negative = text[i] == (byte)'-';
            i++;
        }

        int digitsStart = i;
        ulong magnitude = 0;
        bool overflow = false;
        while (i < text.Length && text[i] is >= (byte)'0' and <= (byte)'9')
        {
            ulong digit = (ulong)(text[i] - '0');
            if (magnitude > (ulong.MaxValue - digit) / 10)
            {
                overflow = true;
            }
            else
            {
                magnitude = magnitude * 10 + digit;
            }

            i++;
        }

        if (i == digitsStart)
        {
            return false;
        }

        p = i;
        if (negative)
        {
            value = overflow || magnitude > (ulong)long.MaxValue + 1 ? long.MinValue : unchecked((long)(0 - magnitude));
        }
        else
        {
            value = overflow || magnitude > long.MaxValue ? long.MaxValue : (long)magnitude;
        }

        return true;
    }

    internal static int SkipSpace(ReadOnlySpan<byte> text, int p)
    {
        while (p < text.Length && IsSpace(text[p]))
        {
            p++;
        }

        return p;
    }

    /// <summary>C's isspace in the C locale.</summary>
    internal static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'\r';
}
