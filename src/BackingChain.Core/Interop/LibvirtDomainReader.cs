using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using System.Xml;
using BackingChain.Chain;
using BackingChain.Internal;
using BackingChain.Trust;

namespace BackingChain.Interop;

/// <summary>
/// Reads a libvirt <c>&lt;disk&gt;</c> element, or a whole <c>&lt;domain&gt;</c>, and answers for each disk what libvirt
/// will do with its (possibly partial) <c>&lt;backingStore&gt;</c> chain, and where the XML and the images disagree.
/// </summary>
/// <remarks>
/// <para>libvirt (docs/kbase/backing_chains.rst; storage_source.c) uses every layer the XML spells out as given,
/// with the format given, and never probes it. An empty <c>&lt;backingStore/&gt;</c> ends the chain: nothing more is
/// opened. Without it, libvirt reads the last given layer's header with the format the XML declares (raw when the disk
/// declares none: the top image is never probed) and walks on, probing where no format is recorded. That walked part is
/// walked here with <see cref="ImageChainResolver"/> under the caller's policy, so it is judged by the same rule as any
/// other chain.</para>
/// <para>The document is treated as hostile text: DTDs are refused (no entity expansion, nothing fetched), its size is
/// bounded, and so is the <c>&lt;backingStore&gt;</c> nesting (200 layers, as libvirt). Layers are read only to learn
/// their recorded backing names and formats; a layer's own backing file is never opened for that.</para>
/// </remarks>
public static class LibvirtDomainReader
{
    /// <summary>The deepest chain a document may spell out, the disk's own source included; libvirt refuses deeper ones.</summary>
    public const int MaxLayers = LibvirtXmlParser.MaxLayers;

    /// <summary>Reads every disk of a domain (or the one disk) and examines its chain.</summary>
    /// <param name="xml">The document: a <c>&lt;domain&gt;</c> or a <c>&lt;disk&gt;</c>, as UTF-8 or with an encoding declaration. It is not closed.</param>
    /// <param name="policy">The policy the walked part of each chain is judged under. Default: <see cref="TrustPolicy.Default"/>.</param>
    /// <returns>One result per disk that has a source, in document order.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="xml"/> is <see langword="null"/>.</exception>
    /// <exception cref="XmlException">The document is not well-formed, has a DTD, is too large, or is not a domain or disk libvirt would accept (a backing store without format or source, a chain deeper than <see cref="MaxLayers"/>).</exception>
    public static ImmutableArray<LibvirtDiskChain> Read(Stream xml, TrustPolicy? policy = null)
    {
        ArgumentNullException.ThrowIfNull(xml);
        List<ParsedDisk> disks = Parse(xml);

        // Local files are read synchronously by the resolver, so this completes without waiting (as ImageChainResolver.Resolve).
        return ExamineAllAsync(disks, policy ?? TrustPolicy.Default, CancellationToken.None).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Reads every disk of a domain (or the one disk) and examines its chain.</summary>
    /// <param name="xml">The document: a <c>&lt;domain&gt;</c> or a <c>&lt;disk&gt;</c>. It is read to its end (at most the size bound) and not closed.</param>
    /// <param name="policy">The policy the walked part of each chain is judged under. Default: <see cref="TrustPolicy.Default"/>.</param>
    /// <param name="cancellationToken">Cancels reading and walking.</param>
    /// <returns>One result per disk that has a source, in document order.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="xml"/> is <see langword="null"/>.</exception>
    /// <exception cref="XmlException">The document is not well-formed, has a DTD, is too large, or is not a domain or disk libvirt would accept.</exception>
    public static async ValueTask<ImmutableArray<LibvirtDiskChain>> ReadAsync(Stream xml, TrustPolicy? policy = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(xml);

        // The text is buffered (bounded: UTF-8 takes at most 4 bytes per character) and parsed by the one synchronous parser.
        const long maxBytes = LibvirtXmlParser.MaxDocumentCharacters * 4;
        using var buffer = new MemoryStream();
        byte[] chunk = new byte[81920];
        int read;
        while ((read = await xml.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                throw new XmlException("the document is larger than the size limit");
            }

            buffer.Write(chunk, 0, read);
        }

        buffer.Position = 0;
        List<ParsedDisk> disks = Parse(buffer);
        return await ExamineAllAsync(disks, policy ?? TrustPolicy.Default, cancellationToken).ConfigureAwait(false);
    }

    private static List<ParsedDisk> Parse(Stream xml)
    {
        using var reader = XmlReader.Create(xml, LibvirtXmlParser.CreateSettings());
        return LibvirtXmlParser.Parse(reader);
    }

    private static async ValueTask<ImmutableArray<LibvirtDiskChain>> ExamineAllAsync(List<ParsedDisk> disks, TrustPolicy policy, CancellationToken cancellationToken)
    {
        var results = ImmutableArray.CreateBuilder<LibvirtDiskChain>(disks.Count);
        foreach (ParsedDisk disk in disks)
        {
            results.Add(await ExamineAsync(disk, policy, cancellationToken).ConfigureAwait(false));
        }

        return results.MoveToImmutable();
    }

    private static async ValueTask<LibvirtDiskChain> ExamineAsync(ParsedDisk disk, TrustPolicy policy, CancellationToken cancellationToken)
    {
        ImmutableArray<LibvirtDiskLayer> layers = disk.Layers;
        var drift = ImmutableArray.CreateBuilder<LibvirtDrift>();

        // Each explicit layer's own header, read with the format the XML declares and without following its backing
        // file (depth 1): what it records is compared with what the XML puts below it.
        var headerReader = new ImageChainResolver(new ImageChainResolverOptions { Policy = policy, MaxDepth = 1 });
        var facts = new ChainLayer?[layers.Length];
        for (int i = 0; i < layers.Length; i++)
        {
            LibvirtDiskLayer layer = layers[i];
            if (!layer.IsLocal || !TryGetFormat(layer, i, out ImageFormat format))
            {
                continue;
            }

            ImageChain own = await headerReader.ResolveAsync(layer.Path!, format, cancellationToken).ConfigureAwait(false);
            if (own.Layers.IsEmpty)
            {
                drift.Add(own.Ending == ChainEnding.Missing
                    ? new LibvirtDrift(LibvirtDriftKind.LayerMissing, i, layer.Path, null, $"'{layer.Path}' cannot be opened: {own.ErrorMessage}")
                    : new LibvirtDrift(LibvirtDriftKind.FormatMismatch, i, format.GetQemuName(), null, $"'{layer.Path}' is not a valid {format.GetQemuName()} image: {own.ErrorMessage}"));
                continue;
            }

            facts[i] = own.Layers[0];
        }

        for (int i = 0; i < layers.Length; i++)
        {
            if (facts[i] is not ChainLayer image)
            {
                continue;
            }

            ImageReference? backing = image.Backing;
            if (i + 1 < layers.Length)
            {
                LibvirtDiskLayer next = layers[i + 1];
                if (backing is null)
                {
                    drift.Add(new LibvirtDrift(LibvirtDriftKind.ExtraLayer, i + 1, next.ToString(), null, $"the XML puts '{next}' below '{image.FileName}', which records no backing file"));
                    continue;
                }

                if (!SameSource(backing, next) && !IsUnknown(backing, next))
                {
                    drift.Add(new LibvirtDrift(LibvirtDriftKind.BackingNameMismatch, i, next.ToString(), backing.StoredName, $"'{image.FileName}' records backing file '{backing.StoredName}', but the XML puts '{next}' below it"));
                }

                if (backing.RecordedFormat is not null && next.Format is not null && !SameFormat(backing.RecordedFormat, next.Format))
                {
                    drift.Add(new LibvirtDrift(LibvirtDriftKind.BackingFormatMismatch, i, next.Format, backing.RecordedFormat, $"'{image.FileName}' records backing format '{backing.RecordedFormat}', but the XML declares '{next.Format}' for '{next}'"));
                }
            }
            else if (disk.IsTerminated && backing is not null)
            {
                drift.Add(new LibvirtDrift(LibvirtDriftKind.MissingLayer, i, null, backing.StoredName, $"'{image.FileName}' records backing file '{backing.StoredName}', but the XML ends the chain there: qemu will not open it"));
            }
        }

        if (disk.IsTerminated)
        {
            return new LibvirtDiskChain(disk.Target, disk.Device, layers, true, null, true, null, drift.ToImmutable());
        }

        // Not terminated: libvirt reads the last given layer as declared (raw if the disk declares nothing) and walks on.
        int last = layers.Length - 1;
        LibvirtDiskLayer start = layers[last];
        if (!TryGetFormat(start, last, out ImageFormat declared))
        {
            return Unsafe($"libvirt's format '{start.Format}' of '{start}' is not one this library reads, so the chain below it cannot be judged");
        }

        if (!start.IsLocal)
        {
            // libvirt walks only local storage; for anything else the chain stays open and qemu opens whatever the
            // header names, without libvirt's rule. Only a format that cannot have a backing file is safe then.
            return CanHaveBacking(declared)
                ? Unsafe($"'{start}' is {start.SourceType} storage, whose header libvirt does not read: qemu will open whatever it names, unchecked; end the chain with <backingStore/> or spell it out")
                : new LibvirtDiskChain(disk.Target, disk.Device, layers, false, null, true, null, drift.ToImmutable());
        }

        var walker = new ImageChainResolver(new ImageChainResolverOptions { Policy = policy, MaxDepth = Math.Max(1, MaxLayers - last) });
        TrustReport report = await walker.CheckAsync(start.Path!, declared, cancellationToken).ConfigureAwait(false);
        string? reason = report.IsSafe
            ? null
            : $"the chain libvirt walks from '{start.Path}' is unsafe ({TrustReportJson.GetName(report.Reason)}){(report.Chain.ErrorMessage is { } error ? ": " + error : "")}";
        return new LibvirtDiskChain(disk.Target, disk.Device, layers, false, report, report.IsSafe, reason, drift.ToImmutable());

        LibvirtDiskChain Unsafe(string why) => new(disk.Target, disk.Device, layers, false, null, false, why, drift.ToImmutable());
    }

    /// <summary>The format libvirt uses for a layer: as declared, and raw for a disk that declares none (libvirt never probes the top image).</summary>
    private static bool TryGetFormat(LibvirtDiskLayer layer, int index, out ImageFormat format)
    {
        string? name = layer.Format ?? (index == 0 ? "raw" : null);

        // libvirt turns a detected or declared iso into raw for qemu.
        if (name == "iso")
        {
            name = "raw";
        }

        return ImageFormatNames.TryParse(name, out format);
    }

    /// <summary>storageFormatBacking: the formats qemu gives a backing image.</summary>
    private static bool CanHaveBacking(ImageFormat format) => format is ImageFormat.Qcow2 or ImageFormat.Qcow or ImageFormat.Qed or ImageFormat.Vmdk;

    private static bool SameFormat(string recorded, string declared) =>
        ImageFormatNames.TryParse(recorded, out ImageFormat a) && ImageFormatNames.TryParse(declared, out ImageFormat b)
            ? a == b
            : string.Equals(recorded, declared, StringComparison.Ordinal);

    /// <summary>Storage the XML describes that cannot be compared with a stored name here (a pool volume, an NVMe namespace...).</summary>
    private static bool IsUnknown(ImageReference backing, LibvirtDiskLayer next) =>
        !(next.IsLocal || next.Protocol is not null) || backing.Kind == ReferenceKind.Json;

    /// <summary>Whether the name an image records opens what the XML puts below it.</summary>
    private static bool SameSource(ImageReference backing, LibvirtDiskLayer next)
    {
        if (next.IsLocal)
        {
            if (!backing.IsLocalPath || backing.FullName is null)
            {
                return false;
            }

            if (string.Equals(backing.FullName, next.Path, StringComparison.Ordinal))
            {
                return true;
            }

            // Two spellings of one file (a relative name, a symlink, "..") are the same layer.
            return UnixFileStatus.TryGet(backing.FullName, out UnixFileStatus a)
                && UnixFileStatus.TryGet(next.Path!, out UnixFileStatus b)
                && a.Device == b.Device && a.Inode == b.Inode;
        }

        return backing.Kind == ReferenceKind.Protocol && LibvirtNetworkName.Matches(backing.StoredName, next);
    }
}
