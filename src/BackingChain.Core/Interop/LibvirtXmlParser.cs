using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Xml;

namespace BackingChain.Interop;

/// <summary>A <c>&lt;disk&gt;</c> as the document gives it, before any image is read.</summary>
internal sealed record ParsedDisk(string? Target, string? Device, ImmutableArray<LibvirtDiskLayer> Layers, bool IsTerminated);

/// <summary>
/// Reads <c>&lt;disk&gt;</c> elements (alone, or every one under <c>&lt;domain&gt;&lt;devices&gt;</c>) with a forward-only
/// <see cref="XmlReader"/>. The document is someone else's text: no DTD (so no entity can expand or fetch anything), a
/// bounded size, and the <c>&lt;backingStore&gt;</c> nesting bounded as libvirt bounds it. Elements the reader does not
/// need are skipped without being walked.
/// </summary>
internal static class LibvirtXmlParser
{
    /// <summary>libvirt refuses deeper chains (qemu_domain.c, bz 1524278: libxml2's nesting limit).</summary>
    public const int MaxLayers = 200;

    /// <summary>The largest document read, in characters: 200 layers of a few hundred characters per disk leave ample room.</summary>
    public const long MaxDocumentCharacters = 16L * 1024 * 1024;

    public static XmlReaderSettings CreateSettings() => new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        MaxCharactersInDocument = MaxDocumentCharacters,
        IgnoreComments = true,
        IgnoreProcessingInstructions = true,
        IgnoreWhitespace = true,
        CloseInput = false,
    };

    /// <exception cref="XmlException">The document is not well-formed, has a DTD, is too large, or is not a domain or disk libvirt would accept.</exception>
    public static List<ParsedDisk> Parse(XmlReader reader)
    {
        var disks = new List<ParsedDisk>();
        reader.MoveToContent();
        switch (reader.NodeType == XmlNodeType.Element ? reader.LocalName : null)
        {
            case "disk":
                AddDisk(reader, disks);
                break;
            case "domain":
                ParseDomain(reader, disks);
                break;
            default:
                throw Error(reader, "the document is neither a <domain> nor a <disk>");
        }

        // Anything after the root is an error the reader reports only when asked to go on.
        while (reader.Read())
        {
        }

        return disks;
    }

    private static void ParseDomain(XmlReader reader, List<ParsedDisk> disks)
    {
        if (reader.IsEmptyElement)
        {
            reader.Read();
            return;
        }

        int depth = reader.Depth;
        reader.Read();
        while (!(reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth))
        {
            if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "devices" && !reader.IsEmptyElement)
            {
                int devicesDepth = reader.Depth;
                reader.Read();
                while (!(reader.NodeType == XmlNodeType.EndElement && reader.Depth == devicesDepth))
                {
                    if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "disk")
                    {
                        AddDisk(reader, disks);
                    }
                    else if (reader.NodeType == XmlNodeType.Element)
                    {
                        reader.Skip();
                    }
                    else
                    {
                        reader.Read();
                    }
                }

                reader.Read();
            }
            else if (reader.NodeType == XmlNodeType.Element)
            {
                reader.Skip();
            }
            else
            {
                reader.Read();
            }
        }

        reader.Read();
    }

    private static void AddDisk(XmlReader reader, List<ParsedDisk> disks)
    {
        ParsedDisk? disk = ParseDisk(reader);

        // A disk without a source (an empty CD-ROM drive) names no image: there is nothing to walk.
        if (disk is not null)
        {
            disks.Add(disk);
        }
    }

    private static ParsedDisk? ParseDisk(XmlReader reader)
    {
        string type = reader.GetAttribute("type") ?? "file";
        string? device = reader.GetAttribute("device");
        var below = new List<LibvirtDiskLayer>();
        Children children = ParseChildren(reader, "driver", below, 1);
        reader.Read();
        if (children.Source is not { } source)
        {
            return null;
        }

        var layers = ImmutableArray.CreateBuilder<LibvirtDiskLayer>(below.Count + 1);
        layers.Add(source.ToLayer(type, children.Format, source.Index));
        layers.AddRange(below);
        return new ParsedDisk(children.Target, device, layers.MoveToImmutable(), children.IsTerminated);
    }

    /// <summary>
    /// Reads one <c>&lt;backingStore&gt;</c> and what it nests, appending layers top first; returns whether the chain
    /// ends in the empty terminator. As libvirt does, an element without a <c>type</c> is the terminator.
    /// </summary>
    private static bool ParseBackingStore(XmlReader reader, List<LibvirtDiskLayer> layers, int level)
    {
        string? type = reader.GetAttribute("type");
        if (type is null)
        {
            reader.Skip();
            return true;
        }

        // Counted before anything below is read, so a hostile document cannot make the reader recurse deeper.
        if (level >= MaxLayers)
        {
            throw Error(reader, $"backing chains more than {MaxLayers} layers deep are not supported");
        }

        int? index = ParseIndex(reader, reader.GetAttribute("index"));

        // The slot is taken before the nested layers are appended, so the list stays top first.
        int slot = layers.Count;
        layers.Add(null!);
        Children children = ParseChildren(reader, "format", layers, level + 1);

        // libvirt refuses a backing store without these (virDomainDiskBackingStoreParse), so the document is not one it runs.
        if (children.Format is null)
        {
            throw Error(reader, "missing disk backing store format");
        }

        if (children.Source is not { } source)
        {
            throw Error(reader, "missing disk backing store source");
        }

        reader.Read();
        layers[slot] = source.ToLayer(type, children.Format, index ?? source.Index);
        return children.IsTerminated;
    }

    /// <summary>
    /// The children of a <c>&lt;disk&gt;</c> or of a <c>&lt;backingStore&gt;</c>, which differ only in the element that
    /// declares the format (<c>&lt;driver type&gt;</c>, <c>&lt;format type&gt;</c>). Nested backing stores are appended
    /// to <paramref name="below"/> at <paramref name="level"/>. Leaves the reader on the element's end (or on the
    /// element itself when it is empty).
    /// </summary>
    private static Children ParseChildren(XmlReader reader, string formatElement, List<LibvirtDiskLayer> below, int level)
    {
        var children = default(Children);
        if (reader.IsEmptyElement)
        {
            return children;
        }

        int depth = reader.Depth;
        reader.Read();
        while (!(reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth))
        {
            if (reader.NodeType != XmlNodeType.Element)
            {
                reader.Read();
                continue;
            }

            string name = reader.LocalName;
            if (name == formatElement)
            {
                children.Format = reader.GetAttribute("type");
                reader.Skip();
            }
            else if (name == "source")
            {
                children.Source = ParseSource(reader);
            }
            else if (name == "backingStore")
            {
                children.IsTerminated = ParseBackingStore(reader, below, level);
            }
            else if (name == "target" && formatElement == "driver")
            {
                children.Target = reader.GetAttribute("dev");
                reader.Skip();
            }
            else
            {
                reader.Skip();
            }
        }

        return children;
    }

    private static Source ParseSource(XmlReader reader)
    {
        var source = new Source
        {
            File = reader.GetAttribute("file") ?? reader.GetAttribute("dev") ?? reader.GetAttribute("dir"),
            Protocol = reader.GetAttribute("protocol"),
            Name = reader.GetAttribute("name"),
            Query = reader.GetAttribute("query"),
            Index = ParseIndex(reader, reader.GetAttribute("index")),
        };
        var hosts = ImmutableArray.CreateBuilder<string>();
        if (reader.IsEmptyElement)
        {
            reader.Read();
            source.Hosts = hosts.ToImmutable();
            return source;
        }

        int depth = reader.Depth;
        reader.Read();
        while (!(reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth))
        {
            if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "host")
            {
                // Bounded by the document size; libvirt puts no limit on hosts (rbd and gluster list several).
                hosts.Add(DescribeHost(reader.GetAttribute("name"), reader.GetAttribute("port"), reader.GetAttribute("transport"), reader.GetAttribute("socket")));
                reader.Skip();
            }
            else if (reader.NodeType == XmlNodeType.Element)
            {
                reader.Skip();
            }
            else
            {
                reader.Read();
            }
        }

        reader.Read();
        source.Hosts = hosts.ToImmutable();
        return source;
    }

    private static string DescribeHost(string? name, string? port, string? transport, string? socket)
    {
        if (transport == "unix" || socket is not null)
        {
            return "unix:" + socket;
        }

        string host = name ?? "";
        if (host.Contains(':', StringComparison.Ordinal))
        {
            host = "[" + host + "]";
        }

        return port is null ? host : host + ":" + port;
    }

    private static int? ParseIndex(XmlReader reader, string? text)
    {
        if (text is null)
        {
            return null;
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int index) || index < 1)
        {
            throw Error(reader, $"invalid backing store index '{text}'");
        }

        return index;
    }

    private static XmlException Error(XmlReader reader, string message) =>
        reader is IXmlLineInfo info && info.HasLineInfo()
            ? new XmlException(message, null, info.LineNumber, info.LinePosition)
            : new XmlException(message);

    private struct Children
    {
        public string? Format;
        public Source? Source;
        public string? Target;
        public bool IsTerminated;
    }

    private struct Source
    {
        public string? File;
        public string? Protocol;
        public string? Name;
        public string? Query;
        public int? Index;
        public ImmutableArray<string> Hosts;

        public readonly LibvirtDiskLayer ToLayer(string type, string? format, int? index) =>
            new(type, format, type == "network" ? null : File, type == "network" ? Protocol : null, type == "network" ? NetworkName : null, Hosts.IsDefault ? [] : Hosts, index);

        /// <summary>The name, with the query http and https keep (libvirt's <c>query</c> attribute) after a <c>?</c>, as in the URL qemu is given.</summary>
        private readonly string? NetworkName => Query is not null && Protocol is "http" or "https" ? Name + "?" + Query : Name;
    }
}
