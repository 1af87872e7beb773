using System;
using System.Globalization;
using System.Text;

namespace BackingChain.Internal;

/// <summary>
/// One spelling for every way of writing the same http(s) URL, so that a trusted prefix is compared with what the
/// server will actually be asked for: scheme and host lower-cased, the default port dropped, percent-encoded
/// unreserved characters decoded and the remaining escapes upper-cased, and dot-segments removed (RFC 3986 §6.2.2,
/// §5.2.4) after decoding, so <c>%2E%2E</c> climbs exactly as <c>..</c> does. Spellings whose meaning depends on
/// who reads them are refused rather than guessed: userinfo (<c>user@</c>, a classic way to hide the real host),
/// backslashes (some clients read them as <c>/</c>), encoded slashes and backslashes in the path (some servers
/// decode them into separators after the prefix was checked), control characters, spaces and non-ASCII text.
/// </summary>
internal static class HttpUrl
{
    /// <summary>Normalises <paramref name="text"/>, or says why it is not an http(s) URL this library will use.</summary>
    /// <param name="text">The URL as written.</param>
    /// <param name="normalized">The normal form; the fragment is dropped (it is never sent to the server).</param>
    /// <param name="error">Why the URL is refused, when it is.</param>
    /// <returns><see langword="true"/> when the URL was normalised.</returns>
    public static bool TryNormalize(string text, out string normalized, out string? error)
    {
        normalized = "";
        error = Validate(text, out string scheme, out string authority, out string path, out string query);
        if (error is not null)
        {
            return false;
        }

        normalized = string.Concat(scheme, "://", authority, path, query);
        return true;
    }

    /// <summary>
    /// Whether <paramref name="url"/> lies under <paramref name="prefix"/> on a path-segment boundary. Both must
    /// already be normal forms. <c>http://h/images</c> and <c>http://h/images/</c> both cover
    /// <c>http://h/images/a</c> but not <c>http://h/images-old/a</c>. A query in the prefix must match exactly; a
    /// query in the URL is not a path and is not compared when the prefix has none.
    /// </summary>
    /// <remarks>
    /// A URL whose path another server may read as a different path is under no prefix (see
    /// <see cref="HasAmbiguousPath"/>).
    /// </remarks>
    public static bool IsUnder(string url, string prefix)
    {
        SplitQuery(prefix, out string prefixPath, out string prefixQuery);
        SplitQuery(url, out string urlPath, out _);
        if (HasAmbiguousPath(urlPath))
        {
            return false;
        }
        if (prefixQuery.Length > 0)
        {
            return string.Equals(url, prefix, StringComparison.Ordinal);
        }

        if (!urlPath.StartsWith(prefixPath, StringComparison.Ordinal))
        {
            return false;
        }

        // Same origin is part of the prefix: "http://h" + "/..." always carries the authority before the path.
        return urlPath.Length == prefixPath.Length
            || prefixPath.EndsWith('/')
            || urlPath[prefixPath.Length] == '/';
    }

    /// <summary>
    /// Whether the path of a normal form holds what some server reads differently from RFC 3986: a <c>;</c> (Tomcat
    /// and the servers behind it strip path parameters, so <c>..;/</c> climbs), its escape <c>%3B</c>, or an escaped
    /// <c>%</c> (<c>%25</c>: a server or proxy that decodes twice turns <c>%252e%252e</c> into <c>..</c>). The
    /// normal form is compared segment by segment as written; such a path would be judged as one path and served as
    /// another, so it lies under no trusted prefix (the caller's callback may still trust it).
    /// </summary>
    internal static bool HasAmbiguousPath(string pathWithoutQuery) =>
        pathWithoutQuery.Contains(';', StringComparison.Ordinal)
        || pathWithoutQuery.Contains("%25", StringComparison.Ordinal)
        || pathWithoutQuery.Contains("%3B", StringComparison.Ordinal);

    private static void SplitQuery(string url, out string beforeQuery, out string query)
    {
        int question = url.IndexOf('?', StringComparison.Ordinal);
        beforeQuery = question < 0 ? url : url[..question];
        query = question < 0 ? "" : url[question..];
    }

    private static string? Validate(string text, out string scheme, out string authority, out string path, out string query)
    {
        scheme = authority = path = query = "";
        if (string.IsNullOrEmpty(text))
        {
            return "the URL is empty";
        }

        foreach (char c in text)
        {
            if (c <= ' ' || c >= '\u007f')
            {
                return "the URL contains a space, a control character or a non-ASCII character";
            }

            if (c == '\\')
            {
                return "the URL contains a backslash";
            }
        }

        int colon = text.IndexOf("://", StringComparison.Ordinal);
        if (colon <= 0)
        {
            return "the URL has no scheme";
        }

        scheme = text[..colon].ToLowerInvariant();
        if (scheme is not ("http" or "https"))
        {
            return $"the scheme '{scheme}' is not http or https";
        }

        string rest = text[(colon + 3)..];
        int fragment = rest.IndexOf('#', StringComparison.Ordinal);
        if (fragment >= 0)
        {
            rest = rest[..fragment];
        }

        int authorityEnd = rest.IndexOfAny(['/', '?']);
        string rawAuthority = authorityEnd < 0 ? rest : rest[..authorityEnd];
        string rawPathAndQuery = authorityEnd < 0 ? "" : rest[authorityEnd..];

        string? authorityError = NormalizeAuthority(rawAuthority, scheme, out authority);
        if (authorityError is not null)
        {
            return authorityError;
        }

        int question = rawPathAndQuery.IndexOf('?', StringComparison.Ordinal);
        string rawPath = question < 0 ? rawPathAndQuery : rawPathAndQuery[..question];
        string rawQuery = question < 0 ? "" : rawPathAndQuery[question..];

        string? pathError = NormalizeEscapes(rawPath, inPath: true, out string decodedPath);
        if (pathError is not null)
        {
            return pathError;
        }

        string? queryError = NormalizeEscapes(rawQuery, inPath: false, out query);
        if (queryError is not null)
        {
            return queryError;
        }

        path = RemoveDotSegments(decodedPath.Length == 0 ? "/" : decodedPath);
        return null;
    }

    private static string? NormalizeAuthority(string raw, string scheme, out string authority)
    {
        authority = "";
        if (raw.Contains('@', StringComparison.Ordinal))
        {
            return "the URL carries userinfo (user@host)";
        }

        string host;
        string port = "";
        if (raw.StartsWith('['))
        {
            int close = raw.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                return "the URL's IPv6 host is not closed";
            }

            host = raw[..(close + 1)];
            string after = raw[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':')
                {
                    return "the URL's host is followed by something other than a port";
                }

                port = after[1..];
            }

            foreach (char c in host.AsSpan(1, host.Length - 2))
            {
                if (!char.IsAsciiHexDigit(c) && c is not (':' or '.'))
                {
                    return "the URL's IPv6 host is not an address";
                }
            }
        }
        else
        {
            int portColon = raw.LastIndexOf(':');
            host = portColon < 0 ? raw : raw[..portColon];
            port = portColon < 0 ? "" : raw[(portColon + 1)..];

            // "h." and "h" are the same DNS name.
            if (host.EndsWith('.'))
            {
                host = host[..^1];
            }

            foreach (char c in host)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '.'))
                {
                    return $"the URL's host contains '{c}'";
                }
            }
        }

        if (host.Length == 0 || host == "[]")
        {
            return "the URL has no host";
        }

        host = host.ToLowerInvariant();
        int defaultPort = scheme == "https" ? 443 : 80;
        if (port.Length > 0)
        {
            foreach (char c in port)
            {
                if (!char.IsAsciiDigit(c))
                {
                    return "the URL's port is not a number";
                }
            }

            if (port.Length > 5 || !int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int number) || number is 0 or > 65535)
            {
                return "the URL's port is out of range";
            }

            // The default port is written the way servers and clients most often omit it: not at all.
            authority = number == defaultPort ? host : string.Concat(host, ":", number.ToString(CultureInfo.InvariantCulture));
        }
        else
        {
            authority = host;
        }

        return null;
    }

    private static string? NormalizeEscapes(string raw, bool inPath, out string normalized)
    {
        normalized = raw;
        if (!raw.Contains('%', StringComparison.Ordinal))
        {
            return null;
        }

        var text = new StringBuilder(raw.Length);
        for (int i = 0; i < raw.Length; i++)
        {
            char c = raw[i];
            if (c != '%')
            {
                text.Append(c);
                continue;
            }

            if (i + 2 >= raw.Length || !char.IsAsciiHexDigit(raw[i + 1]) || !char.IsAsciiHexDigit(raw[i + 2]))
            {
                return "the URL has a malformed percent-escape";
            }

            int value = (HexValue(raw[i + 1]) << 4) | HexValue(raw[i + 2]);
            i += 2;
            if (value == 0)
            {
                return "the URL contains an encoded NUL";
            }

            if (inPath && value is '/' or '\\')
            {
                return "the URL's path contains an encoded slash or backslash";
            }

            if (char.IsAsciiLetterOrDigit((char)value) || value is '-' or '.' or '_' or '~')
            {
                text.Append((char)value);
            }
            else
            {
                text.Append('%').Append(((byte)value).ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        normalized = text.ToString();
        return null;
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>RFC 3986 §5.2.4 on an absolute path: <c>.</c> segments vanish and <c>..</c> removes the one before it, never above the root.</summary>
    internal static string RemoveDotSegments(string path)
    {
        string[] segments = path.Split('/');
        var output = new System.Collections.Generic.List<string>(segments.Length);

        // segments[0] is the empty text before the leading "/".
        for (int i = 1; i < segments.Length; i++)
        {
            string segment = segments[i];
            bool last = i == segments.Length - 1;
            if (segment == ".")
            {
                if (last)
                {
                    output.Add("");
                }
            }
            else if (segment == "..")
            {
                if (output.Count > 0)
                {
                    output.RemoveAt(output.Count - 1);
                }

                if (last)
                {
                    output.Add("");
                }
            }
            else
            {
                output.Add(segment);
            }
        }

        return "/" + string.Join('/', output);
    }
}
