using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using BackingChain.Chain;
using BackingChain.Trust;

namespace BackingChain.Interop;

/// <summary>
/// How the JSON writers present the server's paths to a client: relative to a store's directory
/// (<see cref="RelativeTo"/>), or through the caller's own mapping (an image's id, say). Every local absolute path a
/// report holds is mapped wherever it is written — a layer's <c>filename</c>, a reference's <c>name</c>, the words of
/// findings and of <c>error</c>, the <c>remediation</c> lines and the problem details' <c>detail</c> — so that a
/// tenant is never told where the server keeps its images. URLs and names that are not absolute paths are kept.
/// </summary>
/// <remarks>
/// Only what is written changes: the report keeps the real paths, and what is given to the host (the libvirt
/// <c>&lt;disk&gt;</c> of <see cref="LibvirtDiskXml"/>) keeps the absolute paths libvirt needs. Immutable; may be
/// shared by any number of threads.
/// </remarks>
public sealed class ImageNameMapping
{
    private readonly Func<string, string> _map;

    // The store's directory for RelativeTo: then a spelling of it the report does not hold as a name is still taken out.
    private readonly string? _directory;

    /// <summary>Creates a mapping that presents each absolute path as <paramref name="map"/> returns it.</summary>
    /// <param name="map">Called with a local absolute path the report holds; returns what the client is shown instead.</param>
    /// <exception cref="ArgumentNullException"><paramref name="map"/> is <see langword="null"/>.</exception>
    public ImageNameMapping(Func<string, string> map)
    {
        ArgumentNullException.ThrowIfNull(map);
        _map = map;
    }

    private ImageNameMapping(string directory)
    {
        _directory = directory;
        _map = path => Path.GetRelativePath(directory, path);
    }

    /// <summary>
    /// A mapping that presents every absolute path relative to <paramref name="directory"/>, as an image of the store
    /// names another: <c>/srv/store/images/base.qcow2</c> as <c>base.qcow2</c>, a file outside as <c>../…</c>.
    /// </summary>
    /// <param name="directory">The store's directory (made absolute).</param>
    /// <returns>The mapping.</returns>
    /// <exception cref="ArgumentException"><paramref name="directory"/> is empty, or is the root directory (nothing would be hidden).</exception>
    public static ImageNameMapping RelativeTo(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        if (Path.GetPathRoot(full) == full)
        {
            throw new ArgumentException("Names relative to the root directory are the absolute names: give the store's own directory.", nameof(directory));
        }

        return new ImageNameMapping(full);
    }

    /// <summary>Presents one name: a local absolute path mapped, anything else (a relative name, a URL) as it is.</summary>
    /// <param name="name">The name.</param>
    /// <returns>What the client is shown.</returns>
    public string Map(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return Path.IsPathRooted(name) ? _map(name) ?? "" : name;
    }

    /// <summary>
    /// Presents a message about <paramref name="report"/> (a finding's words, the reason
    /// <see cref="LibvirtDiskXml.TryToXml(TrustReport, string, out string?, out string?)"/> gives) with every path the report holds mapped.
    /// </summary>
    /// <param name="message">The message.</param>
    /// <param name="report">The report the message is about: its paths are the ones mapped.</param>
    /// <returns>What the client is shown.</returns>
    public string MapMessage(string message, TrustReport report)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(report);
        return For(report)(message);
    }

    /// <summary>The words of a report for a client: every name the report holds mapped, longest first so that no name is cut short.</summary>
    internal Func<string, string> For(TrustReport report)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (ChainLayer layer in report.Chain.Layers)
        {
            Add(names, layer.FileName);
            foreach (ImageReference reference in layer.References)
            {
                Add(names, reference);
            }
        }

        if (report.Chain.UnreadLayer is { } unread)
        {
            Add(names, unread.FileName);
        }

        foreach (ReferenceDecision decision in report.Chain.Decisions)
        {
            Add(names, decision.Reference);
            Add(names, decision.CanonicalPath);
        }

        foreach (ChainFinding finding in report.Findings)
        {
            if (finding.Reference is { } reference)
            {
                Add(names, reference);
            }
        }

        var ordered = new List<string>(names);
        ordered.Sort(static (a, b) => b.Length != a.Length ? b.Length - a.Length : string.CompareOrdinal(a, b));
        var mapped = new List<(string From, string To)>(ordered.Count);
        foreach (string name in ordered)
        {
            mapped.Add((name, Map(name)));
        }

        return text => MapText(text, mapped);
    }

    private string MapText(string text, List<(string From, string To)> names)
    {
        if (string.IsNullOrEmpty(text))
        {
            return text;
        }

        var builder = new StringBuilder(text);
        foreach ((string from, string to) in names)
        {
            builder.Replace(from, to);
        }

        if (_directory is not null)
        {
            // Paths the report does not hold as names (a folder, another spelling of a file): below the store's
            // directory they lose its prefix, and the directory itself is ".".
            builder.Replace(_directory + "/", "");
            ReplaceWhole(builder, _directory, ".");
        }

        return builder.ToString();
    }

    /// <summary>Replaces <paramref name="path"/> where it stands as a whole path, not as the start of a longer name (<c>/srv/images.state</c>).</summary>
    private static void ReplaceWhole(StringBuilder builder, string path, string with)
    {
        string text = builder.ToString();
        int at = text.IndexOf(path, StringComparison.Ordinal);
        if (at < 0)
        {
            return;
        }

        var result = new StringBuilder(text.Length);
        int from = 0;
        while (at >= 0)
        {
            int end = at + path.Length;
            bool whole = end == text.Length || !(char.IsLetterOrDigit(text[end]) || text[end] is '.' or '-' or '_' or '+' or '~');
            result.Append(text, from, at - from).Append(whole ? with : path);
            from = end;
            at = text.IndexOf(path, from, StringComparison.Ordinal);
        }

        result.Append(text, from, text.Length - from);
        builder.Clear().Append(result);
    }

    private static void Add(HashSet<string> names, ImageReference reference)
    {
        Add(names, reference.FullName);
        Add(names, reference.StoredName);
    }

    private static void Add(HashSet<string> names, string? name)
    {
        if (!string.IsNullOrEmpty(name) && Path.IsPathRooted(name))
        {
            names.Add(name);
        }
    }
}
