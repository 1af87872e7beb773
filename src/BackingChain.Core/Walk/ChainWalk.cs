using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Detection;
using BackingChain.Formats;
using BackingChain.Internal;
using BackingChain.Sources;
using Microsoft.Extensions.Logging;

using BackingChain.Chain;

namespace BackingChain.Walk;

/// <summary>
/// The loop of one walk: read a layer (<see cref="LayerReader"/>), classify the names it stores, put each to the gate
/// (<see cref="ReferenceGate"/>), record the layer, and go down to the backing file until the chain ends — complete,
/// or at a loop, too deep, refused, missing or malformed. It owns what the walk made: the layers, findings and
/// decisions it returns, and (through <see cref="WalkSources"/>) every source it opened past the top.
/// </summary>
internal sealed class ChainWalk : IDisposable, ILayerReferenceOpener
{
    private readonly ImageChainResolverOptions _options;
    private readonly ILogger _logger;
    private readonly bool _topHasLocation;
    private readonly DeclaredChain? _declared;
    private readonly bool _shared;
    private readonly PooledList<ChainLayer> _layers = new();
    private readonly PooledList<ChainFinding> _findings = new();
    private readonly PooledList<ReferenceDecision> _decisions = new();
    private readonly IdentitySet _visited = new();

    // Decisions the gate took for the layer being read, while its reader asked for files (VMDK extents).
    private readonly List<ReferenceDecision> _pending = [];

    private readonly WalkSources _sources = new();
    private readonly LayerReader _reader;
    private readonly ReferenceGate _gate;

    // The image the walk reached but could not describe, if it stopped at one.
    private UnreadLayer? _unread;

    public ChainWalk(ImageChainResolverOptions options, ILogger logger, ThoroughDetection? topDetection, bool topHasLocation, DeclaredChain? declared, LayerMemo? memo)
    {
        _options = options;
        _logger = logger;
        _topHasLocation = topHasLocation;
        _declared = declared;
        _shared = memo is not null;
        _reader = new LayerReader(this, _findings, _pending, topDetection, memo, logger);
        _gate = new ReferenceGate(options.Policy, options.SourceProviders, _findings, _sources, logger);
    }

    public async ValueTask<ImageChain> RunAsync(IImageSource top, ImageFormat? declared, CancellationToken cancellationToken)
    {
        IImageSource source = top;
        ImageFormat? format = declared;
        FormatSource formatSource = declared is null ? FormatSource.Probed : FormatSource.Declared;
        _visited.Add(top.Identity);

        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int index = _layers.Count;
            _gate.LocalReferrer = source.Identity.IsLocal;
            LayerRead read = await _reader.ReadAsync(source, format, formatSource, index, cancellationToken).ConfigureAwait(false);
            if (read.Facts is not { } facts)
            {
                _decisions.AddRange(CollectionsMarshal.AsSpan(_pending));

                // What the bytes were taken for stays known, though the image could not be described.
                _unread = read.Used == ImageFormat.Unknown && formatSource == FormatSource.Probed
                    ? null
                    : new UnreadLayer(source.Name, read.Used, formatSource, read.Probed, read.Error ?? "the image could not be read");
                return End(read.Failure ?? ChainEnding.Malformed, read.Error);
            }

            // The layer's facts are read: be done with what this walk opened for it (never the caller's top) before
            // opening anything below.
            _sources.CloseOpened();
            ImageFormat? catalogued = index > 0 ? CatalogMismatch(source, index, read.Used, formatSource) : null;

            ImmutableArray<ImageReference> references = Classify(source, index, facts);
            ImageReference? backing = FindBacking(references);
            if (_declared is not null)
            {
                // A spelled-out layer's backing is the caller's next layer, not the name its header records.
                references = _declared.Apply(index, references, backing);
                backing = FindBacking(references);
            }

            // Every file the layer names goes to the gate, in the order the layer names them; the backing file is
            // opened and kept for the next layer, the others are opened only to learn that they are there.
            IImageSource? next = null;
            ReferenceDecision? backingDecision = null;
            bool tooDeep = backing is not null && _layers.Count + 1 >= _options.MaxDepth;
            foreach (ImageReference reference in references)
            {
                if (ReferenceEquals(reference, backing))
                {
                    if (tooDeep)
                    {
                        backingDecision = ReferenceGate.Record(index, formatSource, reference, ReferenceOutcome.NotAsked, TrustBasis.None, null, null, null);
                    }
                    else
                    {
                        (backingDecision, next) = await _gate.GateAsync(index, formatSource, reference, keepOpen: true, cancellationToken, reuse: true).ConfigureAwait(false);
                    }

                    _decisions.Add(backingDecision);
                    continue;
                }

                ReferenceDecision? early = TakePending(reference.StoredName);
                if (early is null)
                {
                    NoteSideReference(source.Name, index, reference);
                    (early, IImageSource? opened) = await _gate.GateAsync(index, formatSource, reference, keepOpen: false, cancellationToken).ConfigureAwait(false);
                    opened?.Dispose();
                }

                _decisions.Add(early);
            }

            _decisions.AddRange(CollectionsMarshal.AsSpan(_pending));
            _pending.Clear();

            var layer = new ChainLayer
            {
                FileName = source.Name,
                Format = read.Used,
                FormatSource = formatSource,
                ProbedFormat = read.Probed,
                Identity = source.Identity,
                VirtualSize = facts.VirtualSize,
                ActualSize = source.AllocatedSize + facts.AdditionalAllocatedSize,
                ClusterSize = facts.ClusterSize,
                DirtyFlag = ProtocolAnswersGetInfo(source, read.Used) ? facts.DirtyFlag : null,
                Encrypted = facts.Encrypted,
                References = references,
                FormatSpecific = facts.FormatSpecific,
                Detection = read.Detection,
                StructureProblems = [.. facts.StructureProblems],
                CatalogFormat = catalogued,
            };
            _layers.Add(layer);
            if (!_shared)
            {
                // The layer copied what it keeps; a store scan's memory may still share the facts with other walks.
                facts.Recycle(_reader.Context);
            }

            ResolverLog.LayerRead(_logger, index, layer.FileName, layer.Format, layer.FormatSource);

            if (backing is null)
            {
                return End(ChainEnding.Complete, null);
            }

            if (tooDeep)
            {
                string message = $"The backing chain is deeper than {_options.MaxDepth} images.";
                _findings.Add(new ChainFinding(FindingCodes.ChainTooDeep, index, message) { Reference = backing });
                return End(ChainEnding.TooDeep, message);
            }

            if (next is null)
            {
                return End(ReferenceGate.EndingFor(backingDecision!.Outcome), _findings[^1].Message);
            }

            if (!_visited.Add(next.Identity))
            {
                string message = $"Backing file '{backing.FullName}' creates an infinite loop.";
                _findings.Add(new ChainFinding(FindingCodes.BackingLoop, index, message) { Reference = backing });
                return End(ChainEnding.Loop, message);
            }

            _sources.Recycle(source);
            source = next;
            if (backing.RecordedFormat is null)
            {
                format = null;
                formatSource = FormatSource.Probed;
            }
            else if (ImageFormatNames.TryParse(backing.RecordedFormat, out ImageFormat recorded))
            {
                format = recorded;
                formatSource = _declared?.Declares(backing) == true ? FormatSource.Declared : FormatSource.Recorded;
            }
            else
            {
                string message = $"Could not open '{backing.FullName}': Unknown driver '{backing.RecordedFormat}'";
                _findings.Add(new ChainFinding(FindingCodes.UnsupportedFeature, index + 1, message) { Reference = backing });
                return End(ChainEnding.Malformed, message);
            }
        }
    }

    /// <summary>A format reader needs a file the image names before the layer exists (VMDK extents): the same gate.</summary>
    public async ValueTask<IImageSource?> OpenReferenceAsync(LayerReadContext context, StoredReference reference, CancellationToken cancellationToken)
    {
        foreach (ReferenceDecision earlier in _pending)
        {
            if (earlier.Reference.StoredName == reference.Name && earlier.Outcome != ReferenceOutcome.Opened)
            {
                return null;
            }
        }

        ImageReference classified = ToReference(context.Source, context.Index, reference);
        NoteSideReference(context.Source.Name, context.Index, classified);
        (ReferenceDecision decision, IImageSource? source) = await _gate.GateAsync(context.Index, context.FormatSource, classified, keepOpen: true, cancellationToken).ConfigureAwait(false);
        _pending.Add(decision);
        return source;
    }

    /// <summary>Ends a walk stopped by its deadline: the layers read so far, and one finding naming the deadline.</summary>
    public ImageChain EndPastDeadline(string reason)
    {
        _decisions.AddRange(CollectionsMarshal.AsSpan(_pending));
        _pending.Clear();
        string message = $"Could not finish the chain after {_layers.Count} layer(s): {reason}";
        _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, _layers.Count, message));
        return End(ChainEnding.Missing, message);
    }

    public void Dispose()
    {
        _sources.Dispose();
        _reader.Dispose();
        _layers.Dispose();
        _decisions.Dispose();
        _findings.Dispose();
        _visited.Dispose();
    }

    private ImageChain End(ChainEnding ending, string? message)
    {
        ResolverLog.ChainEnded(_logger, _layers.Count > 0 ? _layers[0].FileName : "?", ending, _layers.Count);
        return new ImageChain(_layers.ToImmutable(), ending, _findings.ToImmutable(), message, _options.Policy, _decisions.ToImmutable(), readerFaults: _reader.ReaderFaults, unreadLayer: _unread);
    }

    /// <summary>Classifies the names a layer stores; relative names of an upload without a location cannot be resolved.</summary>
    private ImmutableArray<ImageReference> Classify(IImageSource source, int index, LayerFacts facts)
    {
        if (facts.References.Count == 0)
        {
            return ImmutableArray<ImageReference>.Empty;
        }

        var references = new ImageReference[facts.References.Count];
        for (int i = 0; i < references.Length; i++)
        {
            references[i] = ToReference(source, index, facts.References[i]);
        }

        return ImmutableCollectionsMarshal.AsImmutableArray(references);
    }

    private ImageReference ToReference(IImageSource referrer, int index, StoredReference stored)
    {
        ImageReference reference = QemuPaths.ToReference(referrer.Name, stored.Name, stored.Role, stored.RecordedFormat);
        if (index == 0 && !_topHasLocation && reference.Kind == ReferenceKind.RelativePath)
        {
            // Relative to a directory the image does not have yet: there is no file to judge.
            return new ImageReference(reference.StoredName, reference.Role, reference.RecordedFormat, reference.Kind, null);
        }

        return reference;
    }

    /// <summary>
    /// The catalog's format of a stored image reached through a backing name, with a finding when qemu reads it as
    /// another (probed, or recorded otherwise by the image above): the walk still reads it as qemu does.
    /// </summary>
    private ImageFormat? CatalogMismatch(IImageSource source, int index, ImageFormat used, FormatSource formatSource)
    {
        if (source.Identity.Scheme != "file" || ImageChainResolver.Catalogued(_options.FormatCatalog, source.Name) is not { } recorded)
        {
            return null;
        }

        if (recorded != used)
        {
            string how = formatSource == FormatSource.Probed
                ? $"the image above does not record its backing format, so it is probed, as qemu would, and read as {used.GetQemuName()}"
                : $"the image above records its backing format as {used.GetQemuName()}";
            _findings.Add(new ChainFinding(FindingCodes.FormatMismatch, index, $"'{source.Name}' is recorded in the store as {recorded.GetQemuName()}, but {how}."));
        }

        return recorded;
    }

    /// <summary>
    /// qemu's raw and luks drivers ask the protocol underneath for <c>dirty-flag</c> (<c>bdrv_get_info</c>), and its
    /// curl driver has no answer, so for those formats over http qemu-img prints no <c>dirty-flag</c>.
    /// </summary>
    private static bool ProtocolAnswersGetInfo(IImageSource source, ImageFormat format) =>
        source is not IKnownImageSource { ProtocolAnswersGetInfo: false } || FormatReaders.Get(format) is not { InfoComesFromProtocol: true };

    private static ImageReference? FindBacking(ImmutableArray<ImageReference> references)
    {
        foreach (ImageReference reference in references)
        {
            if (reference.Role == ReferenceRole.BackingFile)
            {
                return reference;
            }
        }

        return null;
    }

    private void NoteSideReference(string name, int index, ImageReference reference)
    {
        if (reference.Role == ReferenceRole.ExternalDataFile)
        {
            _findings.Add(new ChainFinding(FindingCodes.ExternalDataFile, index, $"'{name}' keeps its data in the external file '{reference.StoredName}'.") { Reference = reference });
        }
        else if (reference.Role == ReferenceRole.Extent)
        {
            _findings.Add(new ChainFinding(FindingCodes.ExternalExtent, index, $"'{name}' names the extent file '{reference.StoredName}'.") { Reference = reference });
        }
    }

    private ReferenceDecision? TakePending(string storedName)
    {
        for (int i = 0; i < _pending.Count; i++)
        {
            if (_pending[i].Reference.StoredName == storedName)
            {
                ReferenceDecision decision = _pending[i];
                _pending.RemoveAt(i);
                return decision;
            }
        }

        return null;
    }
}
