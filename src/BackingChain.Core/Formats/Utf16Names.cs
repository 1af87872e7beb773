using System;
using System.Text;

namespace BackingChain.Formats;

/// <summary>
/// Decodes the UTF-16 names VHD and VHDX store for their parents, strictly. A name is what the resolver will
/// open, so it must decode to exactly one string: invalid UTF-16 and a NUL with text after it (a name that a C
/// reader would cut short) are errors, never a substituted or silently shortened string.
/// </summary>
internal static class Utf16Names
{
    private static readonly UnicodeEncoding StrictLittleEndian = new(bigEndian: false, byteOrderMark: false, throwOnInvalidBytes: true);
    private static readonly UnicodeEncoding StrictBigEndian = new(bigEndian: true, byteOrderMark: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Decodes <paramref name="field"/>. NUL code units at the end are padding; a NUL anywhere before other text
    /// is an error when <paramref name="allowTrailingNul"/> is set, and any NUL is one otherwise.
    /// </summary>
    /// <param name="field">The stored bytes (an odd last byte is ignored).</param>
    /// <param name="bigEndian">The byte order.</param>
    /// <param name="allowTrailingNul">Whether the field is NUL padded (VHD) rather than exactly sized (VHDX values).</param>
    /// <param name="name">The name, or <see langword="null"/> when the field is empty or not valid.</param>
    /// <returns>Why the field is not a valid name, or <see langword="null"/>.</returns>
    public static string? TryDecode(ReadOnlySpan<byte> field, bool bigEndian, bool allowTrailingNul, out string? name)
    {
        name = null;
        int units = field.Length / 2;
        int end = units;
        for (int i = 0; i < units; i++)
        {
            if ((field[2 * i] | field[(2 * i) + 1]) == 0)
            {
                end = i;
                break;
            }
        }

        for (int i = end; i < units; i++)
        {
            if (!allowTrailingNul || (field[2 * i] | field[(2 * i) + 1]) != 0)
            {
                return "contains a NUL character";
            }
        }

        if (end == 0)
        {
            return null;
        }

        try
        {
            name = (bigEndian ? StrictBigEndian : StrictLittleEndian).GetString(field[..(2 * end)]);
            return null;
        }
        catch (ArgumentException)
        {
            // DecoderFallbackException (an unpaired surrogate) derives from ArgumentException.
            return "is not valid UTF-16";
        }
    }
}
