using System.Collections.Immutable;
using System.Text;

namespace BackingChain.Interop;

/// <summary>
/// One layer a libvirt <c>&lt;disk&gt;</c> spells out: the disk's own <c>&lt;source&gt;</c> or a nested
/// <c>&lt;backingStore&gt;</c>. libvirt uses these as given and never probes them.
/// </summary>
public sealed class LibvirtDiskLayer
{
    internal LibvirtDiskLayer(string sourceType, string? format, string? path, string? protocol, string? name, string? query, ImmutableArray<string> hosts, int? index)
    {
        SourceType = sourceType;
        Format = format;
        Path = path;
        Protocol = protocol;
        SourceName = name;
        Query = query;
        Name = query is not null && name is not null ? name + "?" + query : name;
        Hosts = hosts;
        Index = index;
    }

    /// <summary>Gets the storage type, as the XML's <c>type</c> attribute gives it: <c>file</c>, <c>block</c>, <c>network</c>, <c>volume</c>, <c>dir</c>...</summary>
    public string SourceType { get; }

    /// <summary>Gets the declared format (<c>&lt;driver type&gt;</c> for the disk, <c>&lt;format type&gt;</c> for a backing store), or <see langword="null"/> when the disk declares none.</summary>
    public string? Format { get; }

    /// <summary>Gets the local path (<c>file</c>, <c>dev</c> or <c>dir</c> of <c>&lt;source&gt;</c>), or <see langword="null"/> for other storage.</summary>
    public string? Path { get; }

    /// <summary>Gets the network protocol (<c>nbd</c>, <c>https</c>, <c>iscsi</c>, <c>rbd</c>, <c>gluster</c>...), or <see langword="null"/>.</summary>
    public string? Protocol { get; }

    /// <summary>Gets the network source's <c>name</c> (export, URL path, pool/image, volume/path), or <see langword="null"/>. For http and https, a <c>query</c> the XML gives follows it after a <c>?</c>.</summary>
    public string? Name { get; }

    /// <summary>Gets the <c>name</c> attribute alone, without the query.</summary>
    internal string? SourceName { get; }

    /// <summary>Gets the <c>query</c> attribute libvirt reads for http and https, which it hands qemu as the URL's query, unescaped.</summary>
    internal string? Query { get; }

    /// <summary>Gets the network hosts, each as <c>host:port</c>, <c>host</c> or <c>unix:SOCKET</c>.</summary>
    public ImmutableArray<string> Hosts { get; }

    /// <summary>Gets the <c>index</c> libvirt gives the layer in live XML, when the document has one.</summary>
    public int? Index { get; }

    /// <summary>Gets whether the layer is a local file or block device, whose header this library can read.</summary>
    public bool IsLocal => Path is not null && SourceType is "file" or "block";

    /// <summary>Gets the layer as one readable name: the path, or <c>protocol://host/name</c>.</summary>
    /// <returns>The name.</returns>
    public override string ToString()
    {
        if (Path is not null)
        {
            return Path;
        }

        if (Protocol is null)
        {
            return $"({SourceType})";
        }

        var text = new StringBuilder(Protocol).Append("://");
        text.AppendJoin(',', Hosts);
        return text.Append(Name is not null && Name.StartsWith('/') ? "" : "/").Append(Name).ToString();
    }
}
