using System;
using System.Text;

namespace BackingChain.Formats;

/// <summary>
/// qemu reads names and text fields as C strings: the first NUL ends them. .NET strings do not stop at NUL, so
/// every reader cuts there first (security.md: a name must not mean one thing to qemu and another to us).
/// </summary>
internal static class CString
{
    /// <summary>The bytes before the first NUL (all of them when there is none).</summary>
    public static ReadOnlySpan<byte> Of(ReadOnlySpan<byte> bytes)
    {
        int nul = bytes.IndexOf((byte)0);
        return nul < 0 ? bytes : bytes[..nul];
    }

    /// <summary>The text before the first NUL, decoded as UTF-8 (invalid sequences become U+FFFD).</summary>
    public static string ToUtf8String(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(Of(bytes));

    /// <summary>The text before the first NUL, decoded as ASCII (other bytes become '?').</summary>
    public static string ToAsciiString(ReadOnlySpan<byte> bytes) => Encoding.ASCII.GetString(Of(bytes));
}
