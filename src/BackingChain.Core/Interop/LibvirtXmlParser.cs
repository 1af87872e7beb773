using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Xml;

namespace BackingChain.Interop;

/// <summary>A <c>&lt;disk&gt;</c> as libvirt reads it, before any image is read, with what libvirt would ignore in it.</summary>
internal sealed record ParsedDisk(string? Target, string? Device, ImmutableArray<LibvirtDiskLayer> Layers, bool IsTerminated, ImmutableArray<IgnoredElement> Ignored);

/// <summary>An element or attribute of a <c>&lt;disk&gt;</c> that libvirt does not read: a later duplicate, or a path attribute of another storage type.</summary>
/// <param name="LayerIndex">The layer it sits in (0 = the disk itself).</param>
/// <param name="What">The ignored element or attribute, as text (bounded by <see cref="LibvirtXmlParser.MaxAttributeBytes"/>).</param>
/// <param name="Message">One readable line.</param>
internal readonly record struct IgnoredElement(int LayerIndex, string What, string Message);

/// <summary>
/// Reads <c>&lt;disk&gt;</c> elements (alone, or every one under <c>&lt;domain&gt;&lt;devices&gt;</c>) with a forward-only
/// <see cref="XmlReader"/>, the way libvirt reads them (domain_conf.c): the <em>first</em> <c>&lt;source&gt;</c>,
/// <c>&lt;driver&gt;</c>, <c>&lt;format&gt;</c>, <c>&lt;backingStore&gt;</c> and <c>&lt;target&gt;</c> of an element
/// count, and a source's path is the attribute of its storage type only (<c>file</c> for <c>type='file'</c>,
/// <c>dev</c> for <c>block</c>, <c>dir</c> for <c>dir</c>). What libvirt ignores is not dropped silently: every later
/// duplicate and every path attribute of another type is returned as an <see cref="IgnoredElement"/>.
/// </summary>
/// <remarks>
/// The document is someone else's text: no DTD (so no entity can expand or fetch anything), at most
/// <see cref="MaxDocumentBytes"/>, every attribute read at most <see cref="MaxAttributeBytes"/>, and the
/// <c>&lt;backingStore&gt;</c> nesting bounded as libvirt bounds it. Elements the reader does not need are skipped
/// without being walked. Every error is a <see cref="DomainXmlException"/> in this library's words.
/// </remarks>
internal static class LibvirtXmlParser
{
    /// <summary>libvirt refuses deeper chains (qemu_domain.c, bz 1524278: libxml2's nesting limit).</summary>
    public const int MaxLayers = 200;

    /// <summary>The largest document read, in bytes: virsh's own limit for an XML file (VSH_MAX_XML_FILE, 10 MiB).</summary>
    public const int MaxDocumentBytes = 10 * 1024 * 1024;

    /// <summary>
    /// The longest attribute value read, in UTF-8 bytes: PATH_MAX (4,096, its terminating NUL included), the longest
    /// name the kernel opens. A longer name could never be opened by qemu; refusing it bounds what every later step
    /// (the walk, the messages, the output) holds and prints.
    /// </summary>
    public const int MaxAttributeBytes = 4095;

    /// <summary>The path attribute of each local storage type (virDomainStorageSourceParse); every other one is ignored.</summary>
    private static readonly string[] PathAttributes = ["file", "dev", "dir"];

    public static XmlReaderSettings CreateSettings() => new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        MaxCharactersInDocument = MaxDocumentBytes,
        IgnoreComments = true,
        IgnoreProcessingInstructions = true,
        IgnoreWhitespace = true,
        CloseInput = false,
    };

    /// <exception cref="XmlException">The document is not well-formed, has a DTD, is too large, has too long a name, or is not a domain or disk libvirt would accept.</exception>
    public static List<ParsedDisk> Parse(XmlReader reader)
    {
        try
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
        catch (XmlException ex) when (ex is not DomainXmlException)
        {
            // The reader's own message is a runtime resource (a bare key in a build with UseSystemResourceKeys): say it in words.
            throw new DomainXmlException(DescribeReaderError(ex), ex.LineNumber, ex.LinePosition, ex);
        }
    }

    /// <summary>
    /// Words for an error of <see cref="XmlReader"/> itself. Its message is a runtime resource, which is a bare key in
    /// a build with <c>UseSystemResourceKeys</c>: it is used only when it is a sentence.
    /// </summary>
    private static string DescribeReaderError(XmlException ex)
    {
        const string what = "the document is not well-formed XML";
        if (AppContext.TryGetSwitch("System.Resources.UseSystemResourceKeys", out bool keys) && keys)
        {
            return what;
        }

        // "Reason. Line 1, position 2." without the position, which the caller adds in the same words every time.
        string message = ex.Message.ReplaceLineEndings(" ");
        int line = message.LastIndexOf(" Line ", StringComparison.Ordinal);
        message = line > 0 ? message[..line] : message;
        return $"{what}: {message.TrimEnd('.')}";
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
        // libvirt's default storage type for a disk without one is file.
        string type = Attribute(reader, "type") ?? "file";
        string? device = Attribute(reader, "device");
        var below = new List<LibvirtDiskLayer>();
        var ignored = new List<IgnoredElement>();
        Children children = ParseChildren(reader, type, "driver", below, ignored, 1);
        reader.Read();

        // As virStorageSourceIsEmpty: local storage without a path, or no source at all, is an empty drive.
        if (children.Source is not { } source || (source.IsLocalType && source.Path is null))
        {
            return null;
        }

        var layers = ImmutableArray.CreateBuilder<LibvirtDiskLayer>(below.Count + 1);
        layers.Add(source.ToLayer(type, children.Format, source.Index));
        layers.AddRange(below);
        return new ParsedDisk(children.Target, device, layers.MoveToImmutable(), children.IsTerminated, [.. ignored]);
    }

    /// <summary>
    /// Reads one <c>&lt;backingStore&gt;</c> and what it nests, appending layers top first; returns whether the chain
    /// ends in the empty terminator. As libvirt does, an element without a <c>type</c> is the terminator.
    /// </summary>
    private static bool ParseBackingStore(XmlReader reader, List<LibvirtDiskLayer> layers, List<IgnoredElement> ignored, int level)
    {
        string? type = Attribute(reader, "type");
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

        int? index = ParseIndex(reader, Attribute(reader, "index"));

        // The slot is taken before the nested layers are appended, so the list stays top first.
        int slot = layers.Count;
        layers.Add(null!);
        Children children = ParseChildren(reader, type, "format", layers, ignored, level + 1);

        // libvirt refuses a backing store without these (virDomainDiskBackingStoreParse), so the document is not one it runs.
        if (string.IsNullOrEmpty(children.Format))
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
    /// The children of a <c>&lt;disk&gt;</c> or of a <c>&lt;backingStore&gt;</c> of storage type <paramref name="type"/>,
    /// which differ only in the element that declares the format (<c>&lt;driver type&gt;</c>, <c>&lt;format type&gt;</c>).
    /// The first of each element counts, as in libvirt's XPath lookups; later ones are noted in
    /// <paramref name="ignored"/> and skipped unread. The first nested backing store is appended to
    /// <paramref name="below"/> at <paramref name="level"/>. Leaves the reader on the element's end (or on the
    /// element itself when it is empty).
    /// </summary>
    private static Children ParseChildren(XmlReader reader, string type, string formatElement, List<LibvirtDiskLayer> below, List<IgnoredElement> ignored, int level)
    {
        var children = default(Children);
        if (reader.IsEmptyElement)
        {
            return children;
        }

        int layer = level - 1;
        bool formatSeen = false;
        bool backingSeen = false;
        bool targetSeen = false;
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
                string? format = Attribute(reader, "type");
                if (formatSeen)
                {
                    Ignore(ignored, layer, $"<{name} type='{format}'>", $"a second <{name}> (type '{format}'); libvirt reads the first (type '{children.Format}')");
                }
                else
                {
                    formatSeen = true;
                    children.Format = format;
                }

                reader.Skip();
            }
            else if (name == "source")
            {
                if (children.Source is { } first)
                {
                    string what = DescribeSource(reader);
                    Ignore(ignored, layer, what, $"a second <source> ({what}); libvirt reads the first ({first.Describe()})");
                    reader.Skip();
                }
                else
                {
                    children.Source = ParseSource(reader, type, layer, ignored);
                }
            }
            else if (name == "backingStore")
            {
                if (backingSeen)
                {
                    string what = Attribute(reader, "type") is { } backingType ? $"<backingStore type='{backingType}'>" : "<backingStore/>";
                    Ignore(ignored, layer, what, $"a second {what}; libvirt reads the first, and nothing in this one");
                    reader.Skip();
                }
                else
                {
                    backingSeen = true;
                    children.IsTerminated = ParseBackingStore(reader, below, ignored, level);
                }
            }
            else if (name == "target" && formatElement == "driver")
            {
                if (!targetSeen)
                {
                    targetSeen = true;
                    children.Target = Attribute(reader, "dev");
                }

                reader.Skip();
            }
            else
            {
                reader.Skip();
            }
        }

        return children;
    }

    /// <summary>
    /// The <c>&lt;source&gt;</c> of storage type <paramref name="type"/>, read as virDomainStorageSourceParse reads it:
    /// the path from the type's own attribute (an empty one is no path), a network source's protocol, name, query
    /// (http and https only) and hosts. Path attributes of other types are noted as ignored.
    /// </summary>
    private static Source ParseSource(XmlReader reader, string type, int layer, List<IgnoredElement> ignored)
    {
        string? own = type switch { "file" => "file", "block" => "dev", "dir" => "dir", _ => null };
        var source = new Source { IsLocalType = own is not null, Index = ParseIndex(reader, Attribute(reader, "index")) };
        foreach (string attribute in PathAttributes)
        {
            string? value = Attribute(reader, attribute);
            if (value is null)
            {
                continue;
            }

            if (attribute == own)
            {
                source.Path = value.Length == 0 ? null : value;
            }
            else
            {
                Ignore(ignored, layer, $"{attribute}='{value}'", $"<source {attribute}='{value}'> in a disk of type '{type}'; libvirt reads {(own is null ? "no path attribute" : $"only '{own}'")} for that type");
            }
        }

        if (type == "network")
        {
            source.Protocol = Attribute(reader, "protocol");
            source.Name = Attribute(reader, "name");
            source.Query = source.Protocol is "http" or "https" ? Attribute(reader, "query") : null;
        }

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
                hosts.Add(DescribeHost(Attribute(reader, "name"), Attribute(reader, "port"), Attribute(reader, "transport"), Attribute(reader, "socket")));
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

    /// <summary>An ignored <c>&lt;source&gt;</c> in a few words: its first path or network attribute.</summary>
    private static string DescribeSource(XmlReader reader)
    {
        foreach (string attribute in (ReadOnlySpan<string>)["file", "dev", "dir", "name", "volume"])
        {
            if (Attribute(reader, attribute) is { } value)
            {
                return $"{attribute}='{value}'";
            }
        }

        return "no path";
    }

    private static void Ignore(List<IgnoredElement> ignored, int layer, string what, string message) =>
        ignored.Add(new IgnoredElement(layer, what, $"layer {layer} has {message}"));

    /// <summary>An attribute of the current element, refused when it is longer than any name the kernel opens.</summary>
    private static string? Attribute(XmlReader reader, string name)
    {
        string? value = reader.GetAttribute(name);
        if (value is not null && value.Length > MaxAttributeBytes / 3 && Encoding.UTF8.GetByteCount(value) > MaxAttributeBytes)
        {
            // The value itself is not repeated: it is what must not be copied into every message and output.
            throw Error(reader, string.Create(CultureInfo.InvariantCulture, $"the {name} attribute of <{reader.LocalName}> is {Encoding.UTF8.GetByteCount(value)} bytes long; names and attributes are limited to {MaxAttributeBytes} bytes (PATH_MAX)"));
        }

        return value;
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

    private static DomainXmlException Error(XmlReader reader, string message) =>
        reader is IXmlLineInfo info && info.HasLineInfo()
            ? new DomainXmlException(message, info.LineNumber, info.LinePosition)
            : new DomainXmlException(message, 0, 0);

    private struct Children
    {
        public string? Format;
        public Source? Source;
        public string? Target;
        public bool IsTerminated;
    }

    private struct Source
    {
        public bool IsLocalType;
        public string? Path;
        public string? Protocol;
        public string? Name;
        public string? Query;
        public int? Index;
        public ImmutableArray<string> Hosts;

        public readonly LibvirtDiskLayer ToLayer(string type, string? format, int? index) =>
            new(type, format, Path, Protocol, Name, Query, Hosts.IsDefault ? [] : Hosts, index);

        public readonly string Describe() =>
            Path is not null ? $"'{Path}'" : Name is not null ? $"name='{Name}'" : "no path";
    }
}
