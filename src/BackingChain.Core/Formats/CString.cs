using System;
using System.Text;
using System.Text.Unicode;

namespace BackingChain.Formats;

/// <summary>
/// qemu reads names and text fields as C strings: the first NUL ends them. .NET strings do not stop at NUL, so
/// every reader cuts there first, so that a name never means one thing to qemu and another to us.
/// </summary>
internal static class CString
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The bytes before the first NUL (all of them when there is none).</summary>
    public static ReadOnlySpan<byte> Of(ReadOnlySpan<byte> bytes)
    {
        int nul = bytes.IndexOf((byte)0);
        return nul < 0 ? bytes : bytes[..nul];
    }

    /// <summary>
    /// A name another file is opened by (backing file, data file, extent, parent): the text before the first NUL,
    /// which must be valid UTF-8. qemu passes the bytes to open(2) unchanged; a lossy decode (U+FFFD) would make
    /// this library judge a different file than the one qemu opens, so invalid bytes are a header error instead.
    /// </summary>
    /// <param name="bytes">The stored bytes.</param>
    /// <param name="what">What the name is, for the message ("backing file name").</param>
    /// <exception cref="ImageFormatException"><see cref="HeaderError.InvalidText"/> when the bytes are not UTF-8.</exception>
    public static string ToName(ReadOnlySpan<byte> bytes, string what)
    {
        ReadOnlySpan<byte> text = Of(bytes);
        if (!Utf8.IsValid(text))
        {
            throw NotUtf8(what);
        }

        return StrictUtf8.GetString(text);
    }

    /// <summary>
    /// A recorded format name (qcow2's backing format): <see cref="ToName"/>, except that a name the registry knows
    /// (<see cref="IImageFormatReader.QemuName"/>, compared exactly, as qemu compares driver names) comes back as
    /// the registry's own string, so that a walk does not decode and keep one more copy of "qcow2" per layer.
    /// </summary>
    /// <exception cref="ImageFormatException"><see cref="HeaderError.InvalidText"/> when the bytes are not UTF-8.</exception>
    public static string ToFormatName(ReadOnlySpan<byte> bytes, string what)
    {
        ReadOnlySpan<byte> text = Of(bytes);
        foreach (IImageFormatReader reader in FormatReaders.All)
        {
            if (Ascii.Equals(text, reader.QemuName))
            {
                return reader.QemuName;
            }
        }

        return ToName(text, what);
    }

    /// <summary>Whether the text before the first NUL is valid UTF-8 (allocation-free, for the parse path).</summary>
    public static bool IsValidUtf8(ReadOnlySpan<byte> bytes) => Utf8.IsValid(Of(bytes));

    /// <summary>The typed error for a name that is not UTF-8.</summary>
    public static ImageFormatException NotUtf8(string what) => new(HeaderError.InvalidText, $"the {what} is not valid UTF-8");

    /// <summary>
    /// Text shown to people only, never used to open anything (snapshot and bitmap names): the text before the
    /// first NUL, decoded as UTF-8 with invalid sequences as U+FFFD, as qemu-img prints them byte for byte.
    /// </summary>
    public static string ToDisplayString(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(Of(bytes));

    /// <summary>The text before the first NUL, decoded as ASCII (other bytes become '?'); display-only fields.</summary>
    public static string ToAsciiString(ReadOnlySpan<byte> bytes) => Encoding.ASCII.GetString(Of(bytes));
}
