using System;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using System.Xml;
using BackingChain.Chain;
using BackingChain.Formats;
using BackingChain.Internal;
using BackingChain.Trust;

namespace BackingChain.Interop;

/// <summary>
/// Writes a libvirt <c>&lt;disk&gt;</c> element that spells out a whole backing chain: the top image as
/// <c>&lt;source&gt;</c>, every layer below it as a nested <c>&lt;backingStore&gt;</c> with its
/// <c>&lt;format&gt;</c>, and an empty <c>&lt;backingStore/&gt;</c> at the end, so that neither libvirt nor
/// qemu probes anything (libvirt, docs/kbase/backing_chains.rst; schema domaincommon.rng). A layer read over
/// http or https (<see cref="Sources.ImageSources.OpenUrlAsync"/>) is written as network storage:
/// <c>type='network'</c> with <c>&lt;source protocol='https' name='path' query='q'&gt;&lt;host name='h' port='443'/&gt;&lt;/source&gt;</c>.
/// </summary>
/// <remarks>
/// <para>Only a chain that is complete and judged safe (<see cref="TrustReport.IsSafe"/>, in the posture of the policy it was walked with) is written. The XML turns
/// every format into an explicit declaration, so writing a probed format that the policy did not accept
/// would launder a guess — possibly one a guest planted — into a trusted fact; and a chain without its
/// terminator would let libvirt probe again. Layers must be local files, block devices or http(s) URLs, in formats
/// libvirt can name, and must not name other files (a qcow2 external data file or VMDK extents), which
/// libvirt 9.0's XML cannot describe. <see cref="TryToXml"/> and <see cref="TryWrite"/> say why a chain is refused.</para>
/// <para>Sources are absolute, as libvirt requires: relative names are joined to the current directory,
/// which must be the one the chain was resolved from (qemu opens them relative to it). <c>.</c> and
/// <c>..</c> are folded only when the folded path is the same file; otherwise the joined path is kept
/// verbatim. Written with <see cref="XmlWriter"/>, so names are escaped and the code is trim- and AOT-safe.</para>
/// </remarks>
public static class LibvirtDiskXml
{
    /// <summary>The target device used when none is given.</summary>
    public const string DefaultTarget = "vda";

    /// <summary>libvirt refuses chains deeper than this (libxml2's nesting limit, bz 1524278).</summary>
    private const int MaxLayers = 200;

    /// <summary>Writes the <c>&lt;disk&gt;</c> element for a judged chain, or says why the chain cannot be written.</summary>
    /// <param name="writer">Where to write the element; nothing is written when the chain is refused.</param>
    /// <param name="report">The verdict on the chain, as <see cref="Walk.ImageChainResolver.CheckAsync(string, ImageFormat?, CancellationToken)"/> returned it.</param>
    /// <param name="target">The guest device name (<c>dev</c> of <c>&lt;target&gt;</c>), such as <c>vda</c>; the bus follows from its prefix (vd: virtio, sd: scsi, hd: ide, xvd: xen).</param>
    /// <param name="reason">A one-line reason when the chain cannot be written; otherwise <see langword="null"/>.</param>
    /// <returns><see langword="true"/> when the element was written.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="writer"/> or <paramref name="report"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="target"/> is not a valid device name.</exception>
    public static bool TryWrite(XmlWriter writer, TrustReport report, string target, [NotNullWhen(false)] out string? reason)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(report);
        ThrowIfInvalidTarget(target);
        reason = Check(report);
        if (reason is not null)
        {
            return false;
        }

        WriteDisk(writer, report, target);
        return true;
    }

    /// <summary>
    /// Gives the <c>&lt;disk&gt;</c> element for a judged chain as indented text without an XML declaration, ending with
    /// a newline, or says why the chain cannot be written.
    /// </summary>
    /// <param name="report">The verdict on the chain.</param>
    /// <param name="target">The guest device name, such as <c>vda</c>.</param>
    /// <param name="xml">The element, when the chain can be written.</param>
    /// <param name="reason">A one-line reason when the chain cannot be written; otherwise <see langword="null"/>.</param>
    /// <returns><see langword="true"/> when <paramref name="xml"/> holds the element.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="report"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="target"/> is not a valid device name.</exception>
    public static bool TryToXml(TrustReport report, string target, [NotNullWhen(true)] out string? xml, [NotNullWhen(false)] out string? reason)
    {
        ArgumentNullException.ThrowIfNull(report);
        ThrowIfInvalidTarget(target);
        reason = Check(report);
        xml = reason is null ? Render(report, target) : null;
        return reason is null;
    }

    /// <summary>
    /// Writes the <c>&lt;disk&gt;</c> element exactly as <see cref="TryToXml"/> gives it (ending in a newline), in
    /// UTF-8, with asynchronous writes only (for an HTTP response body).
    /// </summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="report">The verdict on the chain; it must be one <see cref="TryToXml"/> accepts.</param>
    /// <param name="target">The guest device name.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the element is written and flushed.</returns>
    /// <exception cref="ArgumentException">
    /// The chain cannot be written (the message says why; ask <see cref="TryToXml"/> first to avoid the exception), or
    /// the target is not a device name.
    /// </exception>
    public static async Task WriteAsync(Stream stream, TrustReport report, string target = DefaultTarget, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!TryToXml(report, target, out string? xml, out string? reason))
        {
            throw new ArgumentException(reason, nameof(report));
        }

        byte[] bytes = Encoding.UTF8.GetBytes(xml);
        await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Says why a chain cannot be written (for the tests and benchmarks, which want the two steps apart).</summary>
    internal static bool CanWrite(TrustReport report, [NotNullWhen(false)] out string? reason)
    {
        ArgumentNullException.ThrowIfNull(report);
        reason = Check(report);
        return reason is null;
    }

    /// <summary>The element as text; throws <see cref="ArgumentException"/> when the chain cannot be written.</summary>
    internal static string ToXml(TrustReport report, string target = DefaultTarget) =>
        TryToXml(report, target, out string? xml, out string? reason) ? xml : throw new ArgumentException(reason, nameof(report));

    private static void ThrowIfInvalidTarget(string target)
    {
        if (!IsValidTarget(target))
        {
            throw new ArgumentException($"'{target}' is not a valid target device name.", nameof(target));
        }
    }

    private static string Render(TrustReport report, string target)
    {
        var text = new StringBuilder();
        var settings = new XmlWriterSettings
        {
            OmitXmlDeclaration = true,
            Indent = true,
            IndentChars = "  ",
            NewLineChars = "\n",
            ConformanceLevel = ConformanceLevel.Fragment,
        };
        using (var writer = XmlWriter.Create(text, settings))
        {
            WriteDisk(writer, report, target);
        }

        return text.Append('\n').ToString();
    }

    private static void WriteDisk(XmlWriter writer, TrustReport report, string target)
    {
        ImageChain chain = report.Chain;
        ChainLayer top = chain.Layers[0];
        LayerSource topSource = Locate(top.FileName);
        writer.WriteStartElement("disk");
        writer.WriteAttributeString("type", topSource.Type);
        writer.WriteAttributeString("device", "disk");
        writer.WriteStartElement("driver");
        writer.WriteAttributeString("name", "qemu");
        writer.WriteAttributeString("type", top.Format.GetQemuName());
        writer.WriteEndElement();
        WriteSource(writer, topSource);

        for (int i = 1; i < chain.Layers.Length; i++)
        {
            ChainLayer layer = chain.Layers[i];
            LayerSource source = Locate(layer.FileName);
            writer.WriteStartElement("backingStore");
            writer.WriteAttributeString("type", source.Type);
            writer.WriteStartElement("format");
            writer.WriteAttributeString("type", layer.Format.GetQemuName());
            writer.WriteEndElement();
            WriteSource(writer, source);
        }

        // The terminator: nothing below the last layer, so nothing is probed.
        writer.WriteStartElement("backingStore");
        writer.WriteEndElement();
        for (int i = 1; i < chain.Layers.Length; i++)
        {
            writer.WriteEndElement();
        }

        writer.WriteStartElement("target");
        writer.WriteAttributeString("dev", target);
        string? bus = BusFor(target);
        if (bus is not null)
        {
            writer.WriteAttributeString("bus", bus);
        }

        writer.WriteEndElement();
        writer.WriteEndElement();
    }

    private static string? Check(TrustReport report)
    {
        ImageChain chain = report.Chain;
        if (chain.Layers.IsEmpty)
        {
            return chain.ErrorMessage ?? "the image could not be read";
        }

        // The judge's verdict first: it says why, in the posture the chain was walked with.
        if (!report.IsSafe)
        {
            foreach (LayerVerdict verdict in report.Layers)
            {
                if (verdict.Decision != TrustDecision.Accepted)
                {
                    // The walk's own account (what was refused, and by whom) follows the verdict, when the walk stopped.
                    string walk = chain.ErrorMessage is { } error ? ": " + error : "";
                    return $"'{verdict.FileName}' ({verdict.Format.GetQemuName()}, {verdict.FormatSource.ToString().ToLowerInvariant()}) is rejected ({verdict.Reason}); its chain will not be declared to libvirt{walk}";
                }
            }

            return $"the backing chain is not safe to use ({report.Reason}): {chain.ErrorMessage ?? chain.Ending.ToString()}";
        }

        if (chain.Layers.Length > MaxLayers)
        {
            return $"libvirt does not support backing chains more than {MaxLayers} layers deep";
        }

        foreach (ChainLayer layer in chain.Layers)
        {
            if (LibvirtFormatName(layer.Format) is null)
            {
                return $"libvirt has no name for the format of '{layer.FileName}' ({layer.Format.GetQemuName()})";
            }

            if (QemuPaths.Classify(layer.FileName) is not (ReferenceKind.AbsolutePath or ReferenceKind.RelativePath) && !TryParseHttp(layer.FileName, out _))
            {
                return $"'{layer.FileName}' is neither a local file nor an http(s) URL libvirt can describe; only local files, block devices and plain http(s) URLs are written";
            }

            ImageReference? backing = layer.Backing;
            foreach (ImageReference reference in layer.References)
            {
                if (!ReferenceEquals(reference, backing))
                {
                    return $"'{layer.FileName}' names another file ('{reference.StoredName}', {reference.Role}) that libvirt's disk XML cannot describe";
                }
            }

            // storageFormatBacking: only formats whose qemu driver opens a backing image can have one in libvirt either.
            if (backing is not null && FormatReaders.Get(layer.Format) is not { QemuOpensBacking: true })
            {
                return $"'{layer.FileName}' is {layer.Format.GetQemuName()}, which qemu cannot give a backing image";
            }

            if (!IsXmlText(layer.FileName))
            {
                return "the name of a layer contains characters XML cannot carry";
            }
        }

        return null;
    }

    /// <summary>libvirt's storageFormat names (storagecommon.rng) for the formats the library reads.</summary>
    private static string? LibvirtFormatName(ImageFormat format) => FormatReaders.Get(format)?.LibvirtName;

    /// <summary>Where a layer opened by <paramref name="opened"/> lives: an http(s) URL, or a local file or block device (relative to the current directory).</summary>
    private static LayerSource Locate(string opened)
    {
        if (TryParseHttp(opened, out LayerSource network))
        {
            return network;
        }

        string joined = opened.StartsWith('/') ? opened : Path.Join(Environment.CurrentDirectory, opened);
        string path = joined;
        string folded = Path.GetFullPath(joined);
        if (!string.Equals(folded, joined, StringComparison.Ordinal)
            && string.Equals(RealPath.TryResolve(joined), folded, StringComparison.Ordinal))
        {
            // Folding is safe when no symlink is involved: then the canonical path is the folded one.
            // (Only the path that was opened is resolved; nothing new is looked up.)
            path = folded;
        }

        bool block = UnixFileStatus.TryGet(path, out UnixFileStatus status) && status.IsBlockDevice;
        return new LayerSource(block ? "block" : "file", path, null, null, null, 0);
    }

    /// <summary>
    /// An http(s) URL as libvirt's network source: the protocol, the host and port (always written, so nothing is left
    /// to a default), the path decoded and without its leading <c>/</c> (libvirt reads a URL so, and adds the
    /// <c>/</c> back for qemu), and the query as it is. A URL with user information or a fragment is not one libvirt
    /// describes.
    /// </summary>
    private static bool TryParseHttp(string name, out LayerSource source)
    {
        source = default;
        if (!(name.StartsWith("http://", StringComparison.Ordinal) || name.StartsWith("https://", StringComparison.Ordinal))
            || !Uri.TryCreate(name, UriKind.Absolute, out Uri? uri)
            || uri.UserInfo.Length > 0 || uri.Fragment.Length > 0 || uri.Host.Length == 0)
        {
            return false;
        }

        string host = uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host;
        string path = Uri.UnescapeDataString(uri.AbsolutePath);
        path = path.StartsWith('/') ? path[1..] : path;
        string? query = uri.Query.Length > 1 ? uri.Query[1..] : null;
        source = new LayerSource("network", path, uri.Scheme, host, query, uri.Port);
        return true;
    }

    private static void WriteSource(XmlWriter writer, LayerSource source)
    {
        writer.WriteStartElement("source");
        if (source.Protocol is null)
        {
            writer.WriteAttributeString(source.Type == "block" ? "dev" : "file", source.Path);
        }
        else
        {
            writer.WriteAttributeString("protocol", source.Protocol);
            writer.WriteAttributeString("name", source.Path);
            if (source.Query is not null)
            {
                writer.WriteAttributeString("query", source.Query);
            }

            writer.WriteStartElement("host");
            writer.WriteAttributeString("name", source.Host);
            writer.WriteAttributeString("port", source.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
            writer.WriteEndElement();
        }

        writer.WriteEndElement();
    }

    /// <summary>A layer's storage: a local file or block device (<see cref="Path"/>), or network storage with a protocol, a path on the host, and the host.</summary>
    private readonly record struct LayerSource(string Type, string Path, string? Protocol, string? Host, string? Query, int Port);

    private static string? BusFor(string target) => target switch
    {
        _ when target.StartsWith("vd", StringComparison.Ordinal) => "virtio",
        _ when target.StartsWith("sd", StringComparison.Ordinal) => "scsi",
        _ when target.StartsWith("hd", StringComparison.Ordinal) => "ide",
        _ when target.StartsWith("xvd", StringComparison.Ordinal) => "xen",
        _ => null,
    };

    /// <summary>libvirt's deviceName pattern: <c>[a-zA-Z0-9_\.\-\\:/]+</c>.</summary>
    private static bool IsValidTarget(string? target)
    {
        if (string.IsNullOrEmpty(target))
        {
            return false;
        }

        foreach (char c in target)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' or '\\' or ':' or '/'))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsXmlText(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (XmlConvert.IsXmlChar(text[i]))
            {
                continue;
            }

            if (i + 1 < text.Length && XmlConvert.IsXmlSurrogatePair(text[i + 1], text[i]))
            {
                i++;
                continue;
            }

            return false;
        }

        return true;
    }
}
