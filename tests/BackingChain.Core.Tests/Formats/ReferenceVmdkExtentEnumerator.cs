using System;
using BackingChain.Formats;
using BackingChain.Formats.Vmdk;

namespace BackingChain.Tests.Formats;

/// <summary>
/// The extent walk as it was before it skipped ahead to "RW": the old <see cref="VmdkExtentEnumerator"/> line
/// walk, kept as the reference for <see cref="VmdkExtentEnumeratorEquivalenceTests"/>. The per-line sscanf
/// emulation was not changed by that work, so it is the library's own <c>Scan</c>, not a copy.
/// </summary>
internal ref struct ReferenceVmdkExtentEnumerator
{
    private readonly ReadOnlySpan<byte> _text;
    private int _position;

    internal ReferenceVmdkExtentEnumerator(ReadOnlySpan<byte> text)
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
    public readonly ReferenceVmdkExtentEnumerator GetEnumerator() => this;

    /// <summary>Moves to the next extent qemu would open.</summary>
    /// <returns><see langword="false"/> at the end of the text or at a malformed line (see <see cref="Error"/>).</returns>
    public bool MoveNext()
    {
        while (_position < _text.Length)
        {
            int lineStart = _position;
            _position = NextLine(_text, lineStart);
            int matches = VmdkExtentEnumerator.Scan(_text, lineStart, out Range access, out long sectors, out Range type, out Range fileName, out long flatOffset);
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

    /// <summary>next_line: just past the next newline, or the end of the text.</summary>
    private static int NextLine(ReadOnlySpan<byte> text, int position)
    {
        int newline = text[position..].IndexOf((byte)'\n');
        return newline < 0 ? text.Length : position + newline + 1;
    }
}
