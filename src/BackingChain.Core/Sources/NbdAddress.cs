using System;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace BackingChain.Sources;

/// <summary>
/// Where an NBD export is: a TCP host and port, or a Unix socket, and the export's name. Parsed from the names qemu
/// accepts for its nbd driver: the URLs <c>nbd://HOST[:PORT]/EXPORT</c>, <c>nbd+tcp://…</c> and
/// <c>nbd+unix:///EXPORT?socket=PATH</c>, and the older colon spelling <c>nbd:HOST:PORT[:exportname=EXPORT]</c> or
/// <c>nbd:unix:PATH[:exportname=EXPORT]</c>.
/// </summary>
internal readonly record struct NbdAddress
{
    /// <summary>The port NBD servers listen on unless told otherwise (the protocol's registered port).</summary>
    public const int DefaultPort = 10809;

    /// <summary>The longest export name the protocol carries (the NBD specification's limit on a string).</summary>
    public const int MaxExportLength = 4096;

    private NbdAddress(string? host, int port, string? socket, string export)
    {
        Host = host;
        Port = port;
        Socket = socket;
        Export = export;
    }

    /// <summary>The TCP host, or <see langword="null"/> for a Unix socket.</summary>
    public string? Host { get; }

    /// <summary>The TCP port (0 for a Unix socket).</summary>
    public int Port { get; }

    /// <summary>The Unix socket's path, or <see langword="null"/> for TCP.</summary>
    public string? Socket { get; }

    /// <summary>The export's name (may be empty: the server's default export).</summary>
    public string Export { get; }

    /// <summary>One spelling per export, whatever spelling named it: the key of the source's identity.</summary>
    public string Key => Socket is null
        ? string.Create(CultureInfo.InvariantCulture, $"nbd://{(Host!.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host)}:{Port}/{Uri.EscapeDataString(Export)}")
        : $"nbd+unix:///{Uri.EscapeDataString(Export)}?socket={Uri.EscapeDataString(Socket)}";

    /// <summary>Whether <paramref name="name"/> is spelled as an NBD name at all (whether or not it parses).</summary>
    public static bool IsNbdName(string name) =>
        name.StartsWith("nbd:", StringComparison.Ordinal) || name.StartsWith("nbd+", StringComparison.Ordinal);

    /// <summary>Parses an NBD name, saying what is wrong when it cannot.</summary>
    public static bool TryParse(string name, out NbdAddress address, [NotNullWhen(false)] out string? error)
    {
        address = default;
        if (name.StartsWith("nbd://", StringComparison.Ordinal)
            || name.StartsWith("nbd+tcp://", StringComparison.Ordinal)
            || name.StartsWith("nbd+unix://", StringComparison.Ordinal))
        {
            return TryParseUrl(name, out address, out error);
        }

        if (name.StartsWith("nbd:", StringComparison.Ordinal))
        {
            return TryParseColons(name["nbd:".Length..], out address, out error);
        }

        error = "the name is not an NBD name (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH or nbd:HOST:PORT)";
        return false;
    }

    private static bool TryParseUrl(string name, out NbdAddress address, [NotNullWhen(false)] out string? error)
    {
        address = default;
        if (!Uri.TryCreate(name, UriKind.Absolute, out Uri? uri) || uri.UserInfo.Length != 0 || uri.Fragment.Length != 0)
        {
            error = "the NBD URL is malformed";
            return false;
        }

        // One leading slash separates the authority from the export, which is everything after it (qemu's rule).
        string export = Uri.UnescapeDataString(uri.AbsolutePath.Length > 0 ? uri.AbsolutePath[1..] : "");
        if (!TryCheckExport(export, out error))
        {
            return false;
        }

        if (string.Equals(uri.Scheme, "nbd+unix", StringComparison.Ordinal))
        {
            string? socket = null;
            foreach (string pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                int equals = pair.IndexOf('=', StringComparison.Ordinal);
                string key = equals < 0 ? pair : pair[..equals];
                if (!string.Equals(key, "socket", StringComparison.Ordinal) || equals < 0 || socket is not null)
                {
                    error = "an nbd+unix URL takes exactly one query parameter, socket=PATH";
                    return false;
                }

                socket = Uri.UnescapeDataString(pair[(equals + 1)..]);
            }

            if (uri.Host.Length != 0 || string.IsNullOrEmpty(socket) || socket.Contains('\0', StringComparison.Ordinal))
            {
                error = "an nbd+unix URL names no host and one socket path (nbd+unix:///EXPORT?socket=PATH)";
                return false;
            }

            address = new NbdAddress(null, 0, socket, export);
            return true;
        }

        if (uri.Query.Length != 0 || uri.Host.Length == 0)
        {
            error = "an nbd URL names a host and no query (nbd://HOST[:PORT]/EXPORT)";
            return false;
        }

        address = new NbdAddress(uri.IdnHost.Trim('[', ']'), uri.IsDefaultPort || uri.Port < 0 ? DefaultPort : uri.Port, null, export);
        return true;
    }

    /// <summary>qemu's older spelling: <c>HOST:PORT[:exportname=X]</c> or <c>unix:PATH[:exportname=X]</c> after <c>nbd:</c>.</summary>
    private static bool TryParseColons(string rest, out NbdAddress address, [NotNullWhen(false)] out string? error)
    {
        address = default;
        string export = "";
        int named = rest.IndexOf(":exportname=", StringComparison.Ordinal);
        if (named >= 0)
        {
            export = rest[(named + ":exportname=".Length)..];
            rest = rest[..named];
        }

        if (!TryCheckExport(export, out error))
        {
            return false;
        }

        if (rest.StartsWith("unix:", StringComparison.Ordinal))
        {
            string socket = rest["unix:".Length..];
            if (socket.Length == 0 || socket.Contains('\0', StringComparison.Ordinal))
            {
                error = "nbd:unix: names no socket path";
                return false;
            }

            address = new NbdAddress(null, 0, socket, export);
            return true;
        }

        int colon = rest.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(rest.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            error = "the NBD name is malformed (nbd:HOST:PORT[:exportname=EXPORT])";
            return false;
        }

        string host = rest[..colon].Trim('[', ']');
        if (host.Length == 0 || host.Contains('/', StringComparison.Ordinal))
        {
            error = "the NBD name is malformed (nbd:HOST:PORT[:exportname=EXPORT])";
            return false;
        }

        address = new NbdAddress(host, port, null, export);
        return true;
    }

    private static bool TryCheckExport(string export, [NotNullWhen(false)] out string? error)
    {
        if (export.Length > MaxExportLength || export.Contains('\0', StringComparison.Ordinal))
        {
            error = "the NBD export name is longer than the protocol carries, or holds a NUL";
            return false;
        }

        error = null;
        return true;
    }
}
