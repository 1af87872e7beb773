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
using Microsoft.Extensions.Logging;
using BackingChain.Walk;

namespace BackingChain.Interop;

/// <summary>
/// Reads a libvirt <c>&lt;disk&gt;</c> element, or a whole <c>&lt;domain&gt;</c>, and answers for each disk what libvirt
/// will do with its (possibly partial) <c>&lt;backingStore&gt;</c> chain, whether that chain is safe, and where the XML
/// and the images disagree.
/// </summary>
/// <remarks>
/// <para>libvirt (docs/kbase/backing_chains.rst; storage_source.c) uses every layer the XML spells out as given,
/// with the format given, and never probes it: qemu is told each layer's backing explicitly, so the backing name a
/// spelled-out layer's header records is not what qemu opens. An empty <c>&lt;backingStore/&gt;</c> ends the chain:
/// nothing more is opened. Without it, libvirt reads the last given layer's header with the format the XML declares
/// (raw when the disk declares none: the top image is never probed) and walks on, probing where no format is
/// recorded.</para>
/// <para>The whole chain is walked here that way by <see cref="ImageChainResolver"/>, in one walk: the disk's source is
/// opened as the caller's top image, every layer spelled out below it goes to the trust gate as the backing file of
/// the layer above (read with its declared format), every other file a layer names (a qcow2 data file, VMDK extents)
/// goes to the same gate, and the open end is walked on. The verdict (<see cref="LibvirtDiskChain.Report"/>) is the
/// judge's, under the caller's policy, as for any other chain. Drift is read from the same walk and reported beside
/// the verdict; layers below one the walk could not pass are not examined.</para>
/// <para>The document is treated as hostile text: DTDs are refused (no entity expansion, nothing fetched), its size is
/// bounded, and so is the <c>&lt;backingStore&gt;</c> nesting (200 layers, as libvirt).</para>
/// </remarks>
public sealed partial class LibvirtDomainReader
{
    /// <summary>The deepest chain a document may spell out, the disk's own source included; libvirt refuses deeper ones.</summary>
    internal const int MaxLayers = LibvirtXmlParser.MaxLayers;

    /// <summary>For tests: reads and examines synchronously (local files only, so nothing is waited on).</summary>
    internal static ImmutableArray<LibvirtDiskChain> Read(Stream xml, TrustPolicy? policy = null)
    {
        ArgumentNullException.ThrowIfNull(xml);
        List<ParsedDisk> disks = Parse(xml);
        return ExamineAllAsync(disks, OptionsFor(policy), CancellationToken.None).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Reads every disk of a domain (or the one disk) and examines its chain, opening layers through the configured sources.</summary>
    /// <param name="xml">The document: a <c>&lt;domain&gt;</c> or a <c>&lt;disk&gt;</c>. It is read to its end (at most the size bound) and not closed.</param>
    /// <param name="options">
    /// The policy each chain is walked and judged under, the depth limit, and the sources layers are opened from: add
    /// <see cref="Sources.ImageSources.Http(System.Net.Http.HttpClient)"/> to read <c>http</c> and <c>https</c> network disks and backing stores.
    /// Default: <see cref="ImageChainResolverOptions.Default"/> (local files, <see cref="TrustPolicy.Default"/>).
    /// </param>
    /// <param name="cancellationToken">Cancels reading and walking.</param>
    /// <returns>One result per disk that has a source, in document order.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="xml"/> is <see langword="null"/>.</exception>
    /// <exception cref="XmlException">
    /// The document is not well-formed, has a DTD, is larger than 10 MiB (virsh's limit), has an attribute longer than
    /// 4,095 bytes (PATH_MAX), or is not a domain or disk libvirt would accept (a backing store without format or
    /// source, a chain deeper than 200 layers, libvirt's limit). Its <see cref="Exception.Message"/> is in words, with
    /// the line and position when known.
    /// </exception>
    public static ValueTask<ImmutableArray<LibvirtDiskChain>> ReadAsync(Stream xml, ImageChainResolverOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(xml);
        return ReadAsync(xml, options ?? ImageChainResolverOptions.Default, null, cancellationToken);
    }

    private static async ValueTask<ImmutableArray<LibvirtDiskChain>> ReadAsync(Stream xml, ImageChainResolverOptions options, ILogger? logger, CancellationToken cancellationToken)
    {

        // The text is buffered (bounded as virsh bounds an XML file) and parsed by the one synchronous parser.
        const int maxBytes = LibvirtXmlParser.MaxDocumentBytes;
        using var buffer = new MemoryStream();
        byte[] chunk = new byte[81920];
        int read;
        while ((read = await xml.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                throw new DomainXmlException($"the document is larger than {maxBytes} bytes (virsh's limit for an XML file)", 0, 0);
            }

            buffer.Write(chunk, 0, read);
        }

        buffer.Position = 0;
        List<ParsedDisk> disks = Parse(buffer);
        return await ExamineAllAsync(disks, options, cancellationToken, logger).ConfigureAwait(false);
    }

    private static ImageChainResolverOptions OptionsFor(TrustPolicy? policy) => new() { Policy = policy ?? TrustPolicy.Default };

    private static List<ParsedDisk> Parse(Stream xml)
    {
        using var reader = XmlReader.Create(xml, LibvirtXmlParser.CreateSettings());
        return LibvirtXmlParser.Parse(reader);
    }

    private static async ValueTask<ImmutableArray<LibvirtDiskChain>> ExamineAllAsync(List<ParsedDisk> disks, ImageChainResolverOptions options, CancellationToken cancellationToken, ILogger? logger = null)
    {
        ImageChainResolver resolver = options.Walk.CreateResolver(logger);
        var locations = new TrustLocations(options.Policy);
        var results = ImmutableArray.CreateBuilder<LibvirtDiskChain>(disks.Count);
        foreach (ParsedDisk disk in disks)
        {
            results.Add(await ExamineAsync(resolver, locations, disk, cancellationToken).ConfigureAwait(false));
        }

        return results.MoveToImmutable();
    }

    private static async ValueTask<LibvirtDiskChain> ExamineAsync(ImageChainResolver resolver, TrustLocations locations, ParsedDisk disk, CancellationToken cancellationToken)
    {
        ImmutableArray<LibvirtDiskLayer> layers = disk.Layers;
        var references = ImmutableArray.CreateBuilder<ImageReference>(layers.Length);
        for (int i = 0; i < layers.Length; i++)
        {
            references.Add(ToReference(layers[i], i));
        }

        // One walk for the whole chain qemu will open, and one verdict on it, from the judge.
        var declared = new DeclaredChain(references.MoveToImmutable(), disk.IsTerminated);
        ImageChain chain = await resolver.ResolveDeclaredAsync(declared, cancellationToken).ConfigureAwait(false);
        TrustReport report = TrustEvaluator.Evaluate(chain);
        LibvirtPrediction prediction = await LibvirtPredictor.PredictAsync(disk, chain, cancellationToken).ConfigureAwait(false);
        return new LibvirtDiskChain(disk.Target, disk.Device, layers, disk.IsTerminated, report, Describe(report, prediction), FindDrift(disk, declared, chain, locations), prediction);
    }

    /// <summary>Where the XML and the images disagree: facts beside the verdict, read from the same walk.</summary>
    private static ImmutableArray<LibvirtDrift> FindDrift(ParsedDisk disk, DeclaredChain declared, ImageChain chain, TrustLocations locations)
    {
        ImmutableArray<LibvirtDiskLayer> layers = disk.Layers;
        var drift = ImmutableArray.CreateBuilder<LibvirtDrift>();

        // What libvirt does not read comes first: the chain judged is libvirt's, but another reader may take these.
        foreach (IgnoredElement ignored in disk.Ignored)
        {
            drift.Add(new LibvirtDrift(LibvirtDriftKind.IgnoredByLibvirt, ignored.LayerIndex, ignored.What, null, ignored.Message));
        }

        int read = Math.Min(chain.Layers.Length, layers.Length);
        for (int i = 0; i < read; i++)
        {
            ChainLayer image = chain.Layers[i];
            ImageReference? backing = declared.RecordedBacking(i);
            if (i + 1 < layers.Length)
            {
                LibvirtDiskLayer next = layers[i + 1];
                if (backing is null)
                {
                    drift.Add(new LibvirtDrift(LibvirtDriftKind.ExtraLayer, i + 1, next.ToString(), null, $"the XML puts '{next}' below '{image.FileName}', which records no backing file"));
                    continue;
                }

                if (!IsUnknown(backing, next) && !SameSource(backing, next, MayStat(chain, i, declared.Layers[i + 1], backing, locations)))
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

        // The walk stopped at a spelled-out layer: it is missing, or not the format declared. (A refusal is the verdict's to tell.)
        if (read < layers.Length)
        {
            LibvirtDiskLayer layer = layers[read];
            ImageReference reference = declared.Layers[read];
            ReferenceOutcome outcome = read == 0
                ? (chain.Ending == ChainEnding.Missing ? ReferenceOutcome.Missing : ReferenceOutcome.Opened)
                : OutcomeOf(chain, read - 1, reference);
            if (outcome is ReferenceOutcome.Missing or ReferenceOutcome.Unreadable && layer.IsLocal)
            {
                drift.Add(new LibvirtDrift(LibvirtDriftKind.LayerMissing, read, layer.Path, null, $"'{layer.Path}' cannot be opened: {chain.ErrorMessage}"));
            }
            else if (outcome == ReferenceOutcome.Opened && chain.Ending == ChainEnding.Malformed && ImageFormatNames.TryParse(reference.RecordedFormat, out ImageFormat format))
            {
                drift.Add(new LibvirtDrift(LibvirtDriftKind.FormatMismatch, read, format.GetQemuName(), null, $"'{layer}' is not a valid {format.GetQemuName()} image: {chain.ErrorMessage}"));
            }
        }

        return drift.ToImmutable();
    }

    private static ReferenceOutcome OutcomeOf(ImageChain chain, int layer, ImageReference reference)
    {
        foreach (ReferenceDecision decision in chain.Decisions)
        {
            if (decision.LayerIndex == layer && ReferenceEquals(decision.Reference, reference))
            {
                return decision.Outcome;
            }
        }

        return ReferenceOutcome.NotAsked;
    }

    /// <summary>The verdict in one line: the first rejected layer and why, or what stopped the walk.</summary>
    private static string? Describe(TrustReport report, LibvirtPrediction prediction)
    {
        if (report.IsSafe)
        {
            return prediction.Outcome switch
            {
                LibvirtOutcome.Refused => $"libvirt {LibvirtPrediction.LibvirtVersion} refuses the disk: {prediction.Reason}",
                LibvirtOutcome.StartsWithOtherChain => $"libvirt {LibvirtPrediction.LibvirtVersion} starts the disk with another chain than the images': {prediction.Findings[0].Message}",
                _ => null,
            };
        }

        string walk = report.Chain.ErrorMessage is { } error ? ": " + error : "";
        foreach (LayerVerdict verdict in report.Layers)
        {
            if (verdict.Decision != TrustDecision.Accepted)
            {
                return $"'{verdict.FileName}' ({verdict.Format.GetQemuName()}, {verdict.FormatSource.GetStableName()}) is rejected ({verdict.Reason.GetStableName()}){walk}";
            }
        }

        return $"the chain is unsafe ({report.Reason.GetStableName()}){walk}";
    }

    /// <summary>
    /// A spelled-out layer as the name qemu is given, with the format libvirt gives it: as declared, and raw for a disk
    /// that declares none (libvirt never probes the top image), named as libvirt's qemu driver names it to qemu
    /// (iso as raw, ploop as parallels, vhd as vhdx).
    /// </summary>
    private static ImageReference ToReference(LibvirtDiskLayer layer, int index)
    {
        string? format = layer.Format ?? (index == 0 ? "raw" : null);
        format = format is null ? null : LibvirtHeader.QemuDriver(format) ?? format;
        if (layer.IsLocal)
        {
            return new ImageReference(layer.Path!, ReferenceRole.BackingFile, format, QemuPaths.Classify(layer.Path!), layer.Path);
        }

        // Network storage is a protocol name; only a source configured for it (http, https) can open it.
        return new ImageReference(layer.ToString(), ReferenceRole.BackingFile, format, ReferenceKind.Protocol, LibvirtNetworkName.ToUrl(layer));
    }


    private static bool SameFormat(string recorded, string declared) =>
        ImageFormatNames.TryParse(recorded, out ImageFormat a) && ImageFormatNames.TryParse(LibvirtHeader.QemuDriver(declared) ?? declared, out ImageFormat b)
            ? a == b
            : string.Equals(recorded, declared, StringComparison.Ordinal);

    /// <summary>Storage the XML describes that cannot be compared with a stored name here (a pool volume, an NVMe namespace...).</summary>
    private static bool IsUnknown(ImageReference backing, LibvirtDiskLayer next) =>
        !(next.IsLocal || next.Protocol is not null) || backing.Kind == ReferenceKind.Json;

    /// <summary>
    /// Whether the drift check may ask the file system about both names: the XML's layer only when the walk opened it,
    /// and the name the image records only when the gate would let the walk open it in the policy given. A name the
    /// gate refuses is never touched, not even by <c>stat</c>: an automount point named by a header would wake the
    /// automounter, and the time taken would tell whether it exists.
    /// </summary>
    private static bool MayStat(ImageChain chain, int layer, ImageReference next, ImageReference backing, TrustLocations locations)
    {
        if (OutcomeOf(chain, layer, next) != ReferenceOutcome.Opened || !backing.IsLocalPath || backing.FullName is null)
        {
            return false;
        }

        // Judged as the gate judges a backing file of a layer whose format the XML declares.
        TrustPolicy policy = locations.Policy;
        bool locationMatters = policy.Posture == TrustPosture.UntrustedImage;
        bool trusted = locationMatters && locations.Judge(backing).Trusted;
        return TrustJudge.Admit(policy, FormatSource.Declared, trusted, localReference: true) is TrustBasis.Location or TrustBasis.AuthenticFormat;
    }

    /// <summary>Whether the name an image records opens what the XML puts below it; <paramref name="mayStat"/> says whether the two names may be looked up to compare their identities.</summary>
    private static bool SameSource(ImageReference backing, LibvirtDiskLayer next, bool mayStat)
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
            return mayStat
                && UnixFileStatus.TryGet(backing.FullName, out UnixFileStatus a)
                && UnixFileStatus.TryGet(next.Path!, out UnixFileStatus b)
                && a.Device == b.Device && a.Inode == b.Inode;
        }

        // A relative name in an image read over a protocol is a URL too, resolved against that image's URL.
        string? name = backing.Kind == ReferenceKind.Protocol ? backing.StoredName : backing.IsLocalPath ? null : backing.FullName;
        return name is not null && LibvirtNetworkName.Matches(name, next);
    }
}
