using System;
using System.Text;

namespace BackingChain.Formats.Vpc;

/// <summary>One of the eight parent locator entries of a differencing VHD's dynamic header.</summary>
/// <remarks>
/// The locator only says where its platform data lies; the data itself (the parent's path) is read
/// separately and decoded with <see cref="DecodePath(ReadOnlySpan{byte})"/>.
/// </remarks>
public readonly struct VhdParentLocator
{
    /// <summary>Gets how the platform data encodes the parent's location.</summary>
    public VhdPlatformCode PlatformCode { get; init; }

    /// <summary>Gets the space reserved for the data: sectors by the spec, bytes as Microsoft's tools write it.</summary>
    public uint PlatformDataSpace { get; init; }

    /// <summary>Gets the length of the data in bytes.</summary>
    public uint PlatformDataLength { get; init; }

    /// <summary>Gets the absolute file offset of the data.</summary>
    public ulong PlatformDataOffset { get; init; }

    /// <summary>Gets whether the entry is in use and names a path this library can decode (not a binary Mac alias).</summary>
    public bool HasPath => PlatformCode is VhdPlatformCode.W2ru or VhdPlatformCode.W2ku or VhdPlatformCode.MacX
        or VhdPlatformCode.Wi2r or VhdPlatformCode.Wi2k;

    /// <summary>
    /// Decodes the platform data: UTF-16LE for W2ru/W2ku, the path of a <c>file://</c> URL for MacX, and the
    /// deprecated Wi2r/Wi2k as single-byte text. Trailing NULs are dropped.
    /// </summary>
    /// <param name="data">The <see cref="PlatformDataLength"/> bytes at <see cref="PlatformDataOffset"/>.</param>
    /// <returns>The stored path, or <see langword="null"/> when the code has no path or the text is not valid.</returns>
    public string? DecodePath(ReadOnlySpan<byte> data)
    {
        switch (PlatformCode)
        {
            case VhdPlatformCode.W2ru or VhdPlatformCode.W2ku:
            {
                int units = data.Length / 2;
                int end = 0;
                while (end < units && (data[2 * end] | data[(2 * end) + 1]) != 0)
                {
                    end++;
                }

                return end == 0 ? null : Strict(Encoding.Unicode, data[..(2 * end)]);
            }

            case VhdPlatformCode.MacX:
            {
                string? url = Strict(Encoding.UTF8, TrimNul(data));
                return url is null ? null : FileUrlPath(url);
            }

            case VhdPlatformCode.Wi2r or VhdPlatformCode.Wi2k:
                return Strict(Encoding.UTF8, TrimNul(data));

            default:
                return null;
        }
    }

    private static ReadOnlySpan<byte> TrimNul(ReadOnlySpan<byte> data) => CString.Of(data);

    private static string? Strict(Encoding encoding, ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return null;
        }

        try
        {
            Encoding strict = Encoding.GetEncoding(encoding.CodePage, EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
            string text = strict.GetString(bytes);
            return text.Contains('\0', StringComparison.Ordinal) ? null : text;
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
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
