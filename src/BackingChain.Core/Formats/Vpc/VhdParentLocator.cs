using System;
using System.Text;

namespace BackingChain.Formats.Vpc;

/// <summary>One of the eight parent locator entries of a differencing VHD's dynamic header.</summary>
/// <remarks>
/// The locator only says where its platform data lies; the data itself (the parent's path) is read
/// separately and decoded with <see cref="DecodePath(ReadOnlySpan{byte})"/>.
/// </remarks>
internal readonly struct VhdParentLocator
{
    /// <summary>Gets how the platform data encodes the parent's location.</summary>
    public VhdPlatformCode PlatformCode { get; internal init; }

    /// <summary>Gets the space reserved for the data: sectors by the spec, bytes as Microsoft's tools write it.</summary>
    public uint PlatformDataSpace { get; internal init; }

    /// <summary>Gets the length of the data in bytes.</summary>
    public uint PlatformDataLength { get; internal init; }

    /// <summary>Gets the absolute file offset of the data.</summary>
    public ulong PlatformDataOffset { get; internal init; }

    /// <summary>Gets whether the entry is in use and names a path this library can decode (not a binary Mac alias).</summary>
    public bool HasPath => PlatformCode is VhdPlatformCode.W2ru or VhdPlatformCode.W2ku or VhdPlatformCode.MacX
        or VhdPlatformCode.Wi2r or VhdPlatformCode.Wi2k;

    /// <summary>
    /// Decodes the platform data: UTF-16LE for W2ru/W2ku, the path of a <c>file://</c> URL for MacX, and the
    /// deprecated Wi2r/Wi2k as single-byte text. Trailing NULs are dropped.
    /// </summary>
    /// <param name="data">The <see cref="PlatformDataLength"/> bytes at <see cref="PlatformDataOffset"/>.</param>
    /// <returns>The stored path, or <see langword="null"/> when the code has no path or the text is not valid.</returns>
    public string? DecodePath(ReadOnlySpan<byte> data) => TryDecodePath(data, out string? path) is null ? path : null;

    /// <summary>
    /// Decodes the platform data strictly: text that is not valid UTF-16/UTF-8, or that holds a NUL before its
    /// end (literally, or percent-encoded as <c>%00</c> in a MacX URL), is an error rather than a different name.
    /// </summary>
    /// <param name="data">The platform data.</param>
    /// <param name="path">The stored path, or <see langword="null"/> when the code has no path or the data is empty.</param>
    /// <returns>Why the data is not a valid path ("contains a NUL character"), or <see langword="null"/>.</returns>
    internal string? TryDecodePath(ReadOnlySpan<byte> data, out string? path)
    {
        path = null;
        switch (PlatformCode)
        {
            case VhdPlatformCode.W2ru or VhdPlatformCode.W2ku:
                return Utf16Names.TryDecode(data, bigEndian: false, allowTrailingNul: true, out path);

            case VhdPlatformCode.MacX:
            {
                string? problem = Utf8Text(data, out string? url);
                if (problem is not null || url is null)
                {
                    return problem;
                }

                path = FileUrlPath(url);
                return path.Contains('\0', StringComparison.Ordinal) ? "contains a NUL character" : null;
            }

            case VhdPlatformCode.Wi2r or VhdPlatformCode.Wi2k:
                return Utf8Text(data, out path);

            default:
                return null;
        }
    }

    /// <summary>NUL-padded UTF-8: trailing NULs are padding, a NUL before more text or invalid UTF-8 is an error.</summary>
    private static string? Utf8Text(ReadOnlySpan<byte> data, out string? text)
    {
        text = null;
        ReadOnlySpan<byte> cut = CString.Of(data);
        if (data[cut.Length..].IndexOfAnyExcept((byte)0) >= 0)
        {
            return "contains a NUL character";
        }

        if (!CString.IsValidUtf8(cut))
        {
            return "is not valid UTF-8";
        }

        text = cut.IsEmpty ? null : Encoding.UTF8.GetString(cut);
        return null;
    }

    /// <summary>"file://localhost/a/b%20c.vhd" and "file:///a/b.vhd" → "/a/b c.vhd"; anything else is kept as stored.</summary>
    private static string FileUrlPath(string url)
    {
        const string Scheme = "file://";
        if (!url.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return url;
        }

        string rest = url[Scheme.Length..];
        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return url;
        }

        string host = rest[..slash];
        if (host.Length != 0 && !host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            return url;
        }

        return Uri.UnescapeDataString(rest[slash..]);
    }
}
