using System;
using System.Collections.Immutable;

namespace BackingChain.Interop;

/// <summary>
/// Compares a backing name an image records (a URI such as <c>nbd://host/export</c>, or qemu's older colon syntax
/// <c>nbd:host:port:exportname=X</c>, <c>rbd:pool/image</c>) with a network <c>&lt;source&gt;</c> of libvirt's XML,
/// the way libvirt turns one into the other (storage_source_backingstore.c): protocol, the first host with libvirt's
/// default port, and the name (one leading <c>/</c> dropped; http and https keep the query); and writes a network
/// source as the URI qemu is given for it.
/// </summary>
internal static class LibvirtNetworkName
{
    /// <summary>
    /// The URI of a network layer (<c>https://host:port/name</c>, <c>nbd+unix:///export?socket=S</c>), from its first
    /// host, or <see langword="null"/> when the layer is not network storage. For the protocols qemu's curl driver
    /// reads (http, https, ftp, ftps) it is the very URL libvirt hands qemu (qemuBlockStorageSourceGetURI, then
    /// virURIFormat): the name becomes the path after one <c>/</c> and is escaped as libxml2's <c>xmlSaveUri</c>
    /// escapes a path (so a <c>#</c>, a <c>?</c> or a <c>%</c> in the name is a literal character of the path, not a
    /// fragment, a query or an escape), and the <c>query</c> attribute follows unescaped. What libcurl then sends
    /// (the fragment dropped, dot segments removed) is for the caller's URL rules, which read it the same way.
    /// </summary>
    public static string? ToUrl(LibvirtDiskLayer layer)
    {
        if (layer.Protocol is null)
        {
            return null;
        }

        string host = layer.Hosts.IsEmpty ? "" : layer.Hosts[0];
        if (layer.Protocol is "http" or "https" or "ftp" or "ftps" && !host.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = layer.SourceName ?? "";
            path = path.StartsWith('/') ? path : "/" + path;
            string url = $"{layer.Protocol}://{host}{EscapePath(path)}";
            return layer.Query is null ? url : url + "?" + layer.Query;
        }

        string name = layer.Name ?? "";
        name = name.StartsWith('/') ? name[1..] : name;
        return host.StartsWith("unix:", StringComparison.Ordinal)
            ? $"{layer.Protocol}+unix:///{name}?socket={host["unix:".Length..]}"
            : $"{layer.Protocol}://{host}/{name}";
    }

    /// <summary>
    /// A path escaped as libxml2's <c>xmlSaveUri</c> escapes one: every UTF-8 byte becomes <c>%XX</c> except letters,
    /// digits, RFC 2396's marks (<c>-_.!~*'()</c>) and <c>/;@&amp;=+$,</c>.
    /// </summary>
    internal static string EscapePath(string path)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(path);
        var text = new System.Text.StringBuilder(bytes.Length);
        foreach (byte b in bytes)
        {
            char c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || "-_.!~*'()/;@&=+$,".Contains(c, StringComparison.Ordinal))
            {
                text.Append(c);
            }
            else
            {
                text.Append('%').Append(System.Globalization.CultureInfo.InvariantCulture, $"{b:X2}");
            }
        }

        return text.ToString();
    }

    public static bool Matches(string stored, LibvirtDiskLayer layer)
    {
        if (layer.Protocol is null || !TryParse(stored, out string protocol, out string? host, out string name))
        {
            return false;
        }

        // libvirt drops one leading "/" when it reads a URI, and adds it back when it gives qemu one: both spellings name one path.
        string declared = layer.Name ?? "";
        declared = declared.StartsWith('/') ? declared[1..] : declared;
        if (!string.Equals(protocol, layer.Protocol, StringComparison.Ordinal) || !string.Equals(name, declared, StringComparison.Ordinal))
        {
            return false;
        }

        // A side that names no host (rbd's monitors come from ceph.conf) cannot disagree about it.
        ImmutableArray<string> hosts = layer.Hosts;
        return host is null || hosts.IsEmpty || string.Equals(Normalize(protocol, host), Normalize(protocol, hosts[0]), StringComparison.Ordinal);
    }

    private static bool TryParse(string stored, out string protocol, out string? host, out string name)
    {
        host = null;
        name = "";
        int scheme = stored.IndexOf("://", StringComparison.Ordinal);
        if (scheme > 0)
        {
            string[] parts = stored[..scheme].Split('+', 2);
            protocol = parts[0];
            string transport = parts.Length > 1 ? parts[1] : "tcp";
            string rest = stored[(scheme + 3)..];
            int slash = rest.IndexOf('/', StringComparison.Ordinal);
            string authority = slash < 0 ? rest : rest[..slash];
            string path = slash < 0 ? "" : rest[(slash + 1)..];
            int at = authority.LastIndexOf('@');
            authority = at < 0 ? authority : authority[(at + 1)..];
            int question = path.IndexOf('?', StringComparison.Ordinal);
            string query = question < 0 ? "" : path[(question + 1)..];
            if (protocol is not ("http" or "https") && question >= 0)
            {
                path = path[..question];
            }

            name = path;
            if (transport == "unix")
            {
                foreach (string pair in query.Split('&'))
                {
                    if (pair.StartsWith("socket=", StringComparison.Ordinal))
                    {
                        host = "unix:" + pair["socket=".Length..];
                    }
                }
            }
            else if (authority.Length > 0)
            {
                host = authority;
            }

            return true;
        }

        int colon = stored.IndexOf(':', StringComparison.Ordinal);
        protocol = colon < 0 ? "" : stored[..colon];
        string body = colon < 0 ? "" : stored[(colon + 1)..];
        switch (protocol)
        {
            case "nbd":
            {
                // nbd:unix:SOCKET[:exportname=X] or nbd:HOST:PORT[:exportname=X]; the export starts at the first ":exportname=".
                int export = body.IndexOf(":exportname=", StringComparison.Ordinal);
                name = export < 0 ? "" : body[(export + ":exportname=".Length)..];
                string server = export < 0 ? body : body[..export];
                host = server.StartsWith("unix:", StringComparison.Ordinal) ? server : server.Length == 0 ? null : server;
                return true;
            }

            case "rbd":
            {
                // rbd:pool/image[@snapshot][:option=value...], where "\:" escapes a colon.
                int end = 0;
                while (end < body.Length && !(body[end] == ':' && (end == 0 || body[end - 1] != '\\')))
                {
                    end++;
                }

                name = body[..end].Replace("\\:", ":", StringComparison.Ordinal);
                int snapshot = name.IndexOf('@', StringComparison.Ordinal);
                name = snapshot < 0 ? name : name[..snapshot];
                return true;
            }

            default:
                return false;
        }
    }

    /// <summary><c>host:port</c> in lower case, with libvirt's default port for the protocol when none is given.</summary>
    private static string Normalize(string protocol, string host)
    {
        if (host.StartsWith("unix:", StringComparison.Ordinal))
        {
            return host;
        }

        string name = host;
        string? port = null;
        if (host.StartsWith('['))
        {
            int close = host.IndexOf(']', StringComparison.Ordinal);
            if (close > 0)
            {
                name = host[..(close + 1)];
                port = host.Length > close + 2 && host[close + 1] == ':' ? host[(close + 2)..] : null;
            }
        }
        else if (host.IndexOf(':', StringComparison.Ordinal) is int colon and >= 0 && host.IndexOf(':', colon + 1) < 0)
        {
            name = host[..colon];
            port = host[(colon + 1)..];
        }

        port ??= protocol switch
        {
            "http" => "80",
            "https" => "443",
            "ftp" => "21",
            "ftps" => "990",
            "tftp" => "69",
            "nbd" => "10809",
            "ssh" => "22",
            "iscsi" => "3260",
            "gluster" => "24007",
            _ => "",
        };
        return name.ToLowerInvariant() + ":" + port;
    }
}
