using System;
using System.Buffers;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Detection;
using BackingChain.Formats;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Trust;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

// What reading one layer gives the walk: the facts (null when the walk ends here), the format used and the one
// probed, thorough detection when it ran, and how and why the walk ends when it does.
using LayerRead = (
    BackingChain.Formats.LayerFacts? Facts,
    BackingChain.ImageFormat Used,
    BackingChain.ImageFormat Probed,
    BackingChain.Detection.ThoroughDetection? Detection,
    BackingChain.Chain.ChainEnding? Failure,
    string? Error);

namespace BackingChain.Walk;

/// <summary>
/// Walks a backing chain from its top image down, with qemu's path rules, putting every file an image names to the
/// trust gate before opening it, and recording each gate decision in the chain. Chain problems (missing, loop, too
/// deep, refused, malformed, read errors) are returned as the chain's <see cref="ImageChain.Ending"/> and findings,
/// never thrown.
/// </summary>
/// <remarks>
/// A resolver holds only its options and may be shared by any number of threads; each call walks on its own.
/// <see cref="CheckAsync(string, ImageFormat?, CancellationToken)"/> walks and judges in one call, under the one
/// policy of <see cref="ImageChainResolverOptions.Policy"/>.
/// </remarks>
public sealed class ImageChainResolver
{
    private readonly ImageChainResolverOptions _options;
    private readonly ILogger _logger;

    /// <summary>Creates a resolver.</summary>
    /// <param name="options">Settings; <see cref="ImageChainResolverOptions.Default"/> when <see langword="null"/>.</param>
    /// <param name="logger">Where to log; nothing is logged when <see langword="null"/>.</param>
    public ImageChainResolver(ImageChainResolverOptions? options = null, ILogger<ImageChainResolver>? logger = null)
    {
        _options = options ?? ImageChainResolverOptions.Default;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// For tests and benchmarks: resolves a chain and waits (without a <see cref="Task"/> when the walk finished
    /// synchronously, as it does for local files). Not public: a configured provider (http) may make the walk truly
    /// asynchronous, and blocking on it would tie up a thread.
    /// </summary>
    internal ImageChain Resolve(string path, ImageFormat? format = null)
    {
        ValueTask<ImageChain> walk = ResolveAsync(path, format);
        return walk.IsCompletedSuccessfully ? walk.Result : walk.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>For tests: resolves and judges a chain and waits (see <see cref="Resolve"/>).</summary>
    internal TrustReport Check(string path, ImageFormat? format = null) => TrustJudge.Judge(Resolve(path, format));

    /// <summary>Resolves the chain of a local image and judges it, under the resolver's one policy.</summary>
    /// <param name="path">The top image's path, kept verbatim as qemu keeps it.</param>
    /// <param name="format">The declared format (like <c>-f</c>), or <see langword="null"/> to probe.</param>
    /// <param name="cancellationToken">Cancels the walk.</param>
    /// <returns>The verdict, holding the chain (<see cref="TrustReport.Chain"/>).</returns>
    public async ValueTask<TrustReport> CheckAsync(string path, ImageFormat? format = null, CancellationToken cancellationToken = default) =>
        TrustJudge.Judge(await ResolveAsync(path, format, cancellationToken).ConfigureAwait(false));

    /// <summary>Resolves the chain of an image from any source and judges it, under the resolver's one policy.</summary>
    /// <param name="top">The top image; the caller keeps ownership.</param>
    /// <param name="format">The declared format, or <see langword="null"/> to probe.</param>
    /// <param name="cancellationToken">Cancels the walk.</param>
    /// <returns>The verdict, holding the chain (<see cref="TrustReport.Chain"/>).</returns>
    public async ValueTask<TrustReport> CheckAsync(IImageSource top, ImageFormat? format = null, CancellationToken cancellationToken = default) =>
        TrustJudge.Judge(await ResolveAsync(top, format, cancellationToken).ConfigureAwait(false));

    /// <summary>Resolves the chain of a local image.</summary>
    /// <param name="path">The top image's path, kept verbatim as qemu keeps it.</param>
    /// <param name="format">The declared format (like <c>-f</c>), or <see langword="null"/> to probe.</param>
    /// <param name="cancellationToken">Cancels the walk.</param>
    /// <returns>The chain.</returns>
    public ValueTask<ImageChain> ResolveAsync(string path, ImageFormat? format = null, CancellationToken cancellationToken = default) =>
        ResolveAsync(path, format, null, cancellationToken);

    /// <summary>Resolves the chain of a local image; a store scan passes the layers its walks share.</summary>
    internal async ValueTask<ImageChain> ResolveAsync(string path, ImageFormat? format, LayerMemo? memo, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        IImageSource top;
        try
        {
            // The walk's own source (no handle object): it is disposed below, whatever happens.
            top = FileImageSource.Reopen(path, spare: null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return Unopened(ChainEnding.Missing, FindingCodes.UnreachableImage, $"Could not open '{path}': {DescribeOpenFailure(ex)}");
        }

        using (top)
        {
            return await WalkAsync(top, format, null, topHasLocation: true, cancellationToken, memo: memo).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Resolves a chain whose upper layers the caller spells out (libvirt's disk and backing stores). The top is the
    /// caller's, as the path given to <see cref="ResolveAsync(string, ImageFormat?, CancellationToken)"/>: a local
    /// path, or a name one of the configured sources opens; every layer below it goes to the gate as a backing file.
    /// </summary>
    internal async ValueTask<ImageChain> ResolveDeclaredAsync(DeclaredChain declared, CancellationToken cancellationToken)
    {
        ImageReference top = declared.Layers[0];
        if (!ImageFormatNames.TryParse(top.RecordedFormat, out ImageFormat format))
        {
            return Unopened(ChainEnding.Malformed, FindingCodes.UnsupportedFeature, $"Could not open '{top.StoredName}': Unknown driver '{top.RecordedFormat}'");
        }

        // The deadline covers opening the top as well: it may be a URL.
        using CancellationTokenSource? deadline = StartDeadline(cancellationToken);
        IImageSource source;
        try
        {
            IImageSourceProvider? provider = null;
            foreach (IImageSourceProvider candidate in _options.SourceProviders)
            {
                if (top.FullName is not null && candidate.CanOpen(top))
                {
                    provider = candidate;
                    break;
                }
            }

            if (top.IsLocalPath && top.FullName is not null)
            {
                source = FileImageSource.Open(top.FullName);
            }
            else if (provider is not null)
            {
                source = await provider.OpenAsync(top.FullName!, deadline?.Token ?? cancellationToken).ConfigureAwait(false);
            }
            else
            {
                return Unopened(ChainEnding.Missing, FindingCodes.ProtocolReference, $"'{top.StoredName}' is neither a local file nor a block device (network storage, a pool volume...); no source is configured for it, so it is not opened");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return Unopened(ChainEnding.Missing, FindingCodes.UnreachableImage, $"Could not open '{top.StoredName}': {DescribeOpenFailure(ex)}");
        }
        catch (OperationCanceledException) when (IsPastDeadline(deadline, cancellationToken))
        {
            return Unopened(ChainEnding.Missing, FindingCodes.UnreachableImage, $"Could not open '{top.StoredName}': {PastDeadline()}");
        }

        using (source)
        {
            return await WalkAsync(source, format, null, topHasLocation: true, cancellationToken, declared, deadline: deadline).ConfigureAwait(false);
        }
    }

    /// <summary>Resolves the chain of an image from any source. References are opened through the configured providers.</summary>
    /// <param name="top">The top image; the caller keeps ownership.</param>
    /// <param name="format">The declared format, or <see langword="null"/> to probe.</param>
    /// <param name="cancellationToken">Cancels the walk.</param>
    /// <returns>The chain.</returns>
    public ValueTask<ImageChain> ResolveAsync(IImageSource top, ImageFormat? format = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(top);
        return WalkAsync(top, format, null, topHasLocation: true, cancellationToken);
    }

    /// <summary>
    /// The one walk every input shape takes. The upload gate passes the detection it made over its windows, and says
    /// whether the top image has a location that relative names can be resolved against.
    /// </summary>
    internal async ValueTask<ImageChain> WalkAsync(
        IImageSource top, ImageFormat? format, ThoroughDetection? topDetection, bool topHasLocation, CancellationToken cancellationToken, DeclaredChain? declared = null, LayerMemo? memo = null,
        CancellationTokenSource? deadline = null)
    {
        // The walk's deadline (ImageChainResolverOptions.Timeout), unless the caller started it already.
        using CancellationTokenSource? own = deadline is null ? StartDeadline(cancellationToken) : null;
        deadline ??= own;
        var walk = new Walk(this, topDetection, topHasLocation, declared, memo);
        try
        {
            return await walk.RunAsync(top, format, deadline?.Token ?? cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (IsPastDeadline(deadline, cancellationToken))
        {
            return walk.EndPastDeadline(PastDeadline());
        }
        finally
        {
            walk.Dispose();
        }
    }

    /// <summary>A token source cancelled at the walk's deadline (and with the caller's token), or <see langword="null"/> when there is none.</summary>
    private CancellationTokenSource? StartDeadline(CancellationToken cancellationToken)
    {
        if (_options.Timeout == Timeout.InfiniteTimeSpan)
        {
            return null;
        }

        var source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        source.CancelAfter(_options.Timeout);
        return source;
    }

    /// <summary>Whether a cancellation came from the deadline, not from the caller (whose cancellation still throws).</summary>
    private static bool IsPastDeadline(CancellationTokenSource? deadline, CancellationToken cancellationToken) =>
        deadline is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested;

    private string PastDeadline() => string.Create(
        System.Globalization.CultureInfo.InvariantCulture,
        $"the walk did not finish within its deadline of {_options.Timeout.TotalSeconds:0.###} s");

    /// <summary>The chain of a top image that could not be opened: no layers, one finding.</summary>
    internal ImageChain Unopened(ChainEnding ending, string code, string message) =>
        new(ImmutableArray<ChainLayer>.Empty, ending, [new ChainFinding(code, 0, message)], message, _options.Policy, ImmutableArray<ReferenceDecision>.Empty);

    internal static string DescribeOpenFailure(Exception ex) => ex switch
    {
        FileNotFoundException or DirectoryNotFoundException => "No such file or directory",
        UnauthorizedAccessException => "Permission denied",
        ArgumentException or NotSupportedException => "Invalid file name",
        _ => ErrorWords.Describe(ex),
    };

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    /// <summary>
    /// The state of one walk; owns every source it opens past the top, and is done with each as soon as its layer is
    /// read: a local file's descriptor then waits in a small batch (<see cref="DeferredCloses"/>) to be closed with
    /// others, any other source is disposed at once.
    /// </summary>
    private sealed class Walk : IDisposable, ILayerReferenceOpener
    {
        private readonly ImageChainResolver _resolver;
        private readonly ThoroughDetection? _topDetection;
        private readonly bool _topHasLocation;
        private readonly DeclaredChain? _declared;
        private readonly TrustLocations _locations;
        private readonly List<IImageSource> _opened = [];
        private readonly PooledList<ChainLayer> _layers = new();
        private readonly PooledList<ChainFinding> _findings = new();
        private readonly PooledList<ReferenceDecision> _decisions = new();
        private readonly IdentitySet _visited = new();
        // The head of the layer being read, and behind it room for the tail that thorough detection also looks at.
        private readonly byte[] _head = ArrayPool<byte>.Shared.Rent(ImageFormatDetector.ThoroughHeadLength + ImageFormatDetector.ThoroughTailLength);

        // One reader context for every layer of the walk (see LayerReadContext.Reset).
        private readonly LayerReadContext _context;

        // The source of a layer already read and closed, to be filled in again for the next backing file
        // (FileImageSource.Reopen): a walk of any depth uses two source objects and no handle objects.
        private FileImageSource? _spare;

        // The descriptors of layers already read, closed a batch at a time (most with one close_range each).
        private readonly DeferredCloses _closes = new();

        // The directory of the backing files the plain gate opens: a chain's layers usually lie in one directory, so
        // from the second one there on, an O_PATH descriptor of it is kept and each next layer is looked up by its
        // last component only (the kernel walks one component instead of the whole path). -1 when there is none;
        // NoDirectory when opening it failed for the directory of _previousBacking.
        private const int NoDirectory = -2;
        private int _directory = -1;
        private string? _previousBacking;
        private int _previousStart; // where _previousBacking's last component starts (UnixFile.LastComponentStart)

        // Decisions the gate took for the layer being read, while its reader asked for files (VMDK extents).
        private readonly List<ReferenceDecision> _pending = [];
        private int _readerFaults;

        // The image the walk reached but could not describe, if it stopped at one.
        private UnreadLayer? _unread;

        // Whether the layer being read (whose references go to the gate) was read from this machine (ImageSourceIdentity.IsLocal).
        private bool _localReferrer = true;

        // Layers shared with the other walks of a store scan, or null.
        private readonly LayerMemo? _memo;

        public Walk(ImageChainResolver resolver, ThoroughDetection? topDetection, bool topHasLocation, DeclaredChain? declared, LayerMemo? memo)
        {
            _resolver = resolver;
            _memo = memo;
            _topDetection = topDetection;
            _topHasLocation = topHasLocation;
            _declared = declared;
            _locations = new TrustLocations(resolver._options.Policy);
            _context = new LayerReadContext(this);
        }

        private TrustPolicy Policy => _resolver._options.Policy;

        private ILogger Logger => _resolver._logger;

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
                _localReferrer = source.Identity.IsLocal;
                (LayerFacts? read, ImageFormat used, ImageFormat probed, ThoroughDetection? detection, ChainEnding? failure, string? error) =
                    await ReadLayerOnceAsync(source, format, formatSource, index, cancellationToken).ConfigureAwait(false);
                if (read is not { } facts)
                {
                    _decisions.AddRange(CollectionsMarshal.AsSpan(_pending));

                    // What the bytes were taken for stays known, though the image could not be described.
                    _unread = used == ImageFormat.Unknown && formatSource == FormatSource.Probed
                        ? null
                        : new UnreadLayer(source.Name, used, formatSource, probed, error ?? "the image could not be read");
                    return End(failure ?? ChainEnding.Malformed, error);
                }

                // The layer's facts are read: be done with what this walk opened for it (never the caller's top)
                // before opening anything below. A deep chain holds one source of its own at a time, plus at most
                // DeferredCloses.Capacity bare descriptors of local layers already read, waiting to be closed.
                CloseOpened(keep: null);

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
                bool tooDeep = backing is not null && _layers.Count + 1 >= _resolver._options.MaxDepth;
                foreach (ImageReference reference in references)
                {
                    if (ReferenceEquals(reference, backing))
                    {
                        if (tooDeep)
                        {
                            backingDecision = Record(index, formatSource, reference, ReferenceOutcome.NotAsked, TrustBasis.None, null, null, null);
                        }
                        else
                        {
                            (backingDecision, next) = await GateAsync(index, formatSource, reference, keepOpen: true, cancellationToken, reuse: true).ConfigureAwait(false);
                        }

                        _decisions.Add(backingDecision);
                        continue;
                    }

                    ReferenceDecision? early = TakePending(reference.StoredName);
                    if (early is null)
                    {
                        NoteSideReference(source.Name, index, reference);
                        (early, IImageSource? opened) = await GateAsync(index, formatSource, reference, keepOpen: false, cancellationToken).ConfigureAwait(false);
                        opened?.Dispose();
                    }

                    _decisions.Add(early);
                }

                _decisions.AddRange(CollectionsMarshal.AsSpan(_pending));
                _pending.Clear();

                var layer = new ChainLayer
                {
                    FileName = source.Name,
                    Format = used,
                    FormatSource = formatSource,
                    ProbedFormat = probed,
                    Identity = source.Identity,
                    VirtualSize = facts.VirtualSize,
                    ActualSize = source.AllocatedSize + facts.AdditionalAllocatedSize,
                    ClusterSize = facts.ClusterSize,
                    DirtyFlag = ProtocolAnswersGetInfo(source, used) ? facts.DirtyFlag : null,
                    Encrypted = facts.Encrypted,
                    References = references,
                    FormatSpecific = facts.FormatSpecific,
                    Detection = detection,
                    StructureProblems = [.. facts.StructureProblems],
                };
                _layers.Add(layer);
                if (_memo is null)
                {
                    // The layer copied what it keeps; a store scan's memory may still share the facts with other walks.
                    facts.Recycle(_context);
                }

                ResolverLog.LayerRead(Logger, index, layer.FileName, layer.Format, layer.FormatSource);

                if (backing is null)
                {
                    return End(ChainEnding.Complete, null);
                }

                if (tooDeep)
                {
                    string message = $"The backing chain is deeper than {_resolver._options.MaxDepth} images.";
                    _findings.Add(new ChainFinding(FindingCodes.ChainTooDeep, index, message) { Reference = backing });
                    return End(ChainEnding.TooDeep, message);
                }

                if (next is null)
                {
                    return End(backingDecision!.Outcome is ReferenceOutcome.Refused or ReferenceOutcome.NotFollowed ? ChainEnding.Refused : ChainEnding.Missing, _findings[^1].Message);
                }

                if (!_visited.Add(next.Identity))
                {
                    string message = $"Backing file '{backing.FullName}' creates an infinite loop.";
                    _findings.Add(new ChainFinding(FindingCodes.BackingLoop, index, message) { Reference = backing });
                    return End(ChainEnding.Loop, message);
                }

                if (source is FileImageSource { IsReopened: true } done && !ReferenceEquals(source, top))
                {
                    // Closed by CloseOpened above, and the layer built from it holds none of it: the next spare.
                    _spare = done;
                }

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

        /// <summary>
        /// Reads a layer, or takes the read another walk of the same scan made of the same file, name and format. Only
        /// a read that produced no finding and opened no other file is shared: those are pure functions of the bytes and
        /// the name, so the chain built from a shared read is the one a walk of its own would have built.
        /// </summary>
        private ValueTask<LayerRead> ReadLayerOnceAsync(
            IImageSource source, ImageFormat? format, FormatSource formatSource, int index, CancellationToken cancellationToken)
        {
            // Not an async method itself: a walk outside a store scan goes straight to the read, with no state machine
            // of its own per layer.
            return _memo is null || _topDetection is not null || source is not FileImageSource { ChangeStamp: long stamp }
                ? ReadLayerAsync(source, format, formatSource, index, cancellationToken)
                : ReadSharedLayerAsync(source, stamp, format, formatSource, index, cancellationToken);
        }

        private async ValueTask<LayerRead> ReadSharedLayerAsync(
            IImageSource source, long stamp, ImageFormat? format, FormatSource formatSource, int index, CancellationToken cancellationToken)
        {
            var key = new LayerMemo.Key(source.Identity, stamp, source.Length, source.Name, format);
            Task<LayerMemo.Layer?>? shared = _memo!.Claim(key, out TaskCompletionSource<LayerMemo.Layer?>? claim);
            if (shared is not null)
            {
                LayerMemo.Layer? layer = await shared.WaitAsync(cancellationToken).ConfigureAwait(false);
                if (layer is not null)
                {
                    return (layer.Facts, layer.Used, layer.Probed, layer.Detection, null, null);
                }

                return await ReadLayerAsync(source, format, formatSource, index, cancellationToken).ConfigureAwait(false);
            }

            LayerMemo.Layer? read = null;
            try
            {
                int findings = _findings.Count;
                int pending = _pending.Count;
                var result = await ReadLayerAsync(source, format, formatSource, index, cancellationToken).ConfigureAwait(false);
                if (result.Facts is { } facts && _findings.Count == findings && _pending.Count == pending)
                {
                    read = new LayerMemo.Layer(facts, result.Used, result.Probed, result.Detection);
                }

                return result;
            }
            finally
            {
                LayerMemo.Complete(claim!, read);
            }
        }

        /// <summary>
        /// Reads a layer's head and its facts. A local file's head is read with synchronous <c>pread</c>s, and when its
        /// reader also completes synchronously (a header in the head, as for every qcow2 layer of a plain chain) the
        /// layer is read without any state machine of the walk's own; other sources and readers that truly wait are
        /// awaited.
        /// </summary>
        private ValueTask<LayerRead> ReadLayerAsync(
            IImageSource source, ImageFormat? format, FormatSource formatSource, int index, CancellationToken cancellationToken)
        {
            if (source is not FileImageSource file)
            {
                return ReadLayerFromAnySourceAsync(source, format, formatSource, index, cancellationToken);
            }

            int read;
            ThoroughDetection? detection;
            try
            {
                (bool detect, int headLength, int tailLength) = HeadAndTail(file, formatSource, index);
                read = file.ReadAt(0, _head.AsSpan(0, headLength));
                int tailRead = 0;
                if (detect)
                {
                    // As the source's asynchronous read would: a cancelled walk reads no further.
                    cancellationToken.ThrowIfCancellationRequested();
                    tailRead = file.ReadAt(file.Length - tailLength, _head.AsSpan(ImageFormatDetector.ThoroughHeadLength, tailLength));
                }

                (read, detection) = Detect(file, formatSource, detect, read, tailRead);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ImageFormatException)
            {
                return new ValueTask<LayerRead>(HeadFailed(source, index, ex));
            }

            return ReadFormat(source, format, formatSource, index, read, detection, cancellationToken);
        }

        private async ValueTask<LayerRead> ReadLayerFromAnySourceAsync(
            IImageSource source, ImageFormat? format, FormatSource formatSource, int index, CancellationToken cancellationToken)
        {
            int read;
            ThoroughDetection? detection;
            try
            {
                (bool detect, int headLength, int tailLength) = HeadAndTail(source, formatSource, index);
                read = await ReadFullyAsync(source, 0, _head.AsMemory(0, headLength), cancellationToken).ConfigureAwait(false);
                int tailRead = detect
                    ? await ReadFullyAsync(source, source.Length - tailLength, _head.AsMemory(ImageFormatDetector.ThoroughHeadLength, tailLength), cancellationToken).ConfigureAwait(false)
                    : 0;
                (read, detection) = Detect(source, formatSource, detect, read, tailRead);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ImageFormatException)
            {
                return HeadFailed(source, index, ex);
            }

            return await ReadFormat(source, format, formatSource, index, read, detection, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// How much of a layer is read before its reader runs: the head, and for a layer that gets thorough detection
        /// (see <see cref="Detects"/>: the probed-format rule must know whether the content is also another format, a
        /// polyglot) the head as far as that detection looks plus the tail, which lands in the buffer behind it.
        /// </summary>
        private (bool Detect, int HeadLength, int TailLength) HeadAndTail(IImageSource source, FormatSource formatSource, int index)
        {
            bool detect = Detects(formatSource, index);
            int headLength = (int)Math.Min(detect ? ImageFormatDetector.ThoroughHeadLength : ImageReadLimits.HeadLength, source.Length);
            int tailLength = detect ? (int)Math.Min(ImageFormatDetector.ThoroughTailLength, source.Length) : 0;
            return (detect, headLength, tailLength);
        }

        /// <summary>
        /// What the head (and tail) say before the reader runs: the thorough detection when the layer got one, the
        /// upload gate's own for its top, and how much of the head the reader sees.
        /// </summary>
        private (int Read, ThoroughDetection? Detection) Detect(IImageSource source, FormatSource formatSource, bool detected, int read, int tailRead)
        {
            if (detected)
            {
                ReadOnlySpan<byte> tail = _head.AsSpan(ImageFormatDetector.ThoroughHeadLength, tailRead);
                ThoroughDetection detection = ImageFormatDetector.DetectThorough(_head.AsSpan(0, read), tail, source.Length, source.Name);
                return (Math.Min(read, ImageReadLimits.HeadLength), detection);
            }

            return (read, formatSource == FormatSource.Probed ? _topDetection : null);
        }

        /// <summary>Whether this layer gets thorough detection: a probed format, unless the upload gate made it already.</summary>
        private bool Detects(FormatSource formatSource, int index) => formatSource == FormatSource.Probed && !(index == 0 && _topDetection is not null);

        private LayerRead HeadFailed(IImageSource source, int index, Exception ex)
        {
            string message = $"Could not read '{source.Name}': {ErrorWords.Describe(ex)}";
            bool malformed = ex is ImageFormatException;
            _findings.Add(new ChainFinding(malformed ? FindingCodes.MalformedHeader : FindingCodes.UnreachableImage, index, message));
            return (null, ImageFormat.Unknown, ImageFormat.Unknown, null, malformed ? ChainEnding.Malformed : ChainEnding.Missing, message);
        }

        /// <summary>Probes the head read into the walk's buffer and has the format's reader describe the layer.</summary>
        private ValueTask<LayerRead> ReadFormat(
            IImageSource source, ImageFormat? format, FormatSource formatSource, int index, int read, ThoroughDetection? detection, CancellationToken cancellationToken)
        {
            ReadOnlyMemory<byte> head = _head.AsMemory(0, read);
            ImageFormat probed = ImageFormatDetector.Detect(head.Span, source.Name, source.Length);
            ImageFormat used = format ?? probed;

            IImageFormatReader? reader = FormatReaders.Get(used);
            if (reader is null)
            {
                string message = $"Could not open '{source.Name}': format '{used.GetQemuName()}' is not supported";
                _findings.Add(new ChainFinding(FindingCodes.UnsupportedFeature, index, message));
                return new ValueTask<LayerRead>((null, used, probed, detection, ChainEnding.Malformed, message));
            }

            LayerFacts facts;
            try
            {
                _context.Reset(source, head, formatSource, index);
                ValueTask<LayerFacts> reading = reader.ReadAsync(_context, cancellationToken);
                if (!reading.IsCompletedSuccessfully)
                {
                    return AwaitFormatAsync(reading, source, formatSource, index, used, probed, detection);
                }

                facts = reading.Result;
            }
            catch (ImageFormatException ex)
            {
                facts = LayerFacts.Failed(ex.Error, ex.Message);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return new ValueTask<LayerRead>(ReaderUnreadable(source, index, used, probed, detection, ex));
            }
            catch (Exception ex) when (IsReaderBug(ex))
            {
                facts = ReaderFault(source, used, ex);
            }

            return new ValueTask<LayerRead>(Conclude(source, formatSource, index, facts, used, probed, detection));
        }

        private async ValueTask<LayerRead> AwaitFormatAsync(
            ValueTask<LayerFacts> reading, IImageSource source, FormatSource formatSource, int index, ImageFormat used, ImageFormat probed, ThoroughDetection? detection)
        {
            LayerFacts facts;
            try
            {
                facts = await reading.ConfigureAwait(false);
            }
            catch (ImageFormatException ex)
            {
                facts = LayerFacts.Failed(ex.Error, ex.Message);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return ReaderUnreadable(source, index, used, probed, detection, ex);
            }
            catch (Exception ex) when (IsReaderBug(ex))
            {
                facts = ReaderFault(source, used, ex);
            }

            return Conclude(source, formatSource, index, facts, used, probed, detection);
        }

        private LayerRead ReaderUnreadable(IImageSource source, int index, ImageFormat used, ImageFormat probed, ThoroughDetection? detection, Exception ex)
        {
            string message = $"Could not read '{source.Name}': {ErrorWords.Describe(ex)}";
            _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, message));
            return (null, used, probed, detection, ChainEnding.Missing, message);
        }

        private static bool IsReaderBug(Exception ex) =>
            ex is ArgumentException or IndexOutOfRangeException or OverflowException or InvalidOperationException or DivideByZeroException;

        /// <summary>
        /// Defence in depth: a reader that trips over bytes it failed to validate must still give the caller a finding
        /// for this hostile image, never an exception out of the walk. Counted, so that the tests and the fuzz harness
        /// can see that it fired (it is a reader bug every time).
        /// </summary>
        private LayerFacts ReaderFault(IImageSource source, ImageFormat used, Exception ex)
        {
            _readerFaults++;
            ResolverLog.ReaderFault(Logger, source.Name, ex);
            return LayerFacts.Failed(HeaderError.Inconsistent, $"the {used.GetQemuName()} header could not be read ({ex.GetType().Name})");
        }

        /// <summary>What the facts a reader gave (or its failure) make of the layer: the mismatch finding and the walk's end on an error.</summary>
        private LayerRead Conclude(
            IImageSource source, FormatSource formatSource, int index, LayerFacts facts, ImageFormat used, ImageFormat probed, ThoroughDetection? detection)
        {
            if (used != probed && used != ImageFormat.Raw)
            {
                _findings.Add(new ChainFinding(
                    FindingCodes.FormatMismatch,
                    index,
                    $"'{source.Name}' is read as {used.GetQemuName()} ({formatSource.ToString().ToLowerInvariant()}) but its content probes as {probed.GetQemuName()}."));
            }

            if (facts.Error != HeaderError.None)
            {
                // A reader that failed because the gate kept a file from it (a refused extent) ended the walk there.
                foreach (ReferenceDecision decision in _pending)
                {
                    if (decision.Outcome != ReferenceOutcome.Opened)
                    {
                        return (null, used, probed, detection, decision.Outcome is ReferenceOutcome.Refused or ReferenceOutcome.NotFollowed ? ChainEnding.Refused : ChainEnding.Missing, _findings[^1].Message);
                    }
                }

                string message = $"Could not open '{source.Name}': {facts.ErrorMessage}";
                string code = facts.Error == HeaderError.UnsupportedFeature ? FindingCodes.UnsupportedFeature : FindingCodes.MalformedHeader;
                _findings.Add(new ChainFinding(code, index, message));
                return (null, used, probed, detection, ChainEnding.Malformed, message);
            }

            return (facts, used, probed, detection, null, null);
        }

        private static async ValueTask<int> ReadFullyAsync(IImageSource source, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            int total = 0;
            while (total < buffer.Length)
            {
                int read = await source.ReadAtAsync(offset + total, buffer[total..], cancellationToken).ConfigureAwait(false);
                if (read <= 0)
                {
                    break;
                }

                total += read;
            }

            return total;
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
        /// qemu's raw and luks drivers ask the protocol underneath for <c>dirty-flag</c> (<c>bdrv_get_info</c>), and its
        /// curl driver has no answer, so for those formats over http qemu-img prints no <c>dirty-flag</c>.
        /// </summary>
        private static bool ProtocolAnswersGetInfo(IImageSource source, ImageFormat format) =>
            source is not HttpImageSource || FormatReaders.Get(format) is not { InfoComesFromProtocol: true };

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

        /// <summary>A format reader needs a file the image names before the layer exists (VMDK extents): the same gate.</summary>
        public ValueTask<IImageSource?> OpenReferenceAsync(LayerReadContext context, StoredReference reference, CancellationToken cancellationToken) =>
            OpenForReaderAsync(context.Source, context.FormatSource, reference, context.Index, cancellationToken);

        private async ValueTask<IImageSource?> OpenForReaderAsync(
            IImageSource referrer, FormatSource formatSource, StoredReference stored, int index, CancellationToken cancellationToken)
        {
            foreach (ReferenceDecision earlier in _pending)
            {
                if (earlier.Reference.StoredName == stored.Name && earlier.Outcome != ReferenceOutcome.Opened)
                {
                    return null;
                }
            }

            ImageReference reference = ToReference(referrer, index, stored);
            NoteSideReference(referrer.Name, index, reference);
            (ReferenceDecision decision, IImageSource? source) = await GateAsync(index, formatSource, reference, keepOpen: true, cancellationToken).ConfigureAwait(false);
            _pending.Add(decision);
            return source;
        }

        /// <summary>
        /// The gate: classify, ask the judge's rule (with a pinned digest as the last resort), and only then open.
        /// Every outcome is recorded as a <see cref="ReferenceDecision"/> and, when it stops a file from being used,
        /// as a finding that carries the reference.
        /// </summary>
        private ValueTask<(ReferenceDecision Decision, IImageSource? Source)> GateAsync(
            int index, FormatSource referrer, ImageReference reference, bool keepOpen, CancellationToken cancellationToken, bool reuse = false)
        {
            // The backing file of nearly every layer: a local name the rule admits without asking where it lies. It is
            // opened synchronously (no state machine per layer); everything else takes the general gate below.
            return reuse && TryGateLocalBacking(index, referrer, reference, out (ReferenceDecision Decision, IImageSource? Source) gated)
                ? new ValueTask<(ReferenceDecision Decision, IImageSource? Source)>(gated)
                : GateAnyAsync(index, referrer, reference, keepOpen, reuse, cancellationToken);
        }

        /// <summary>
        /// The gate's decision for a backing file that the rule admits without judging its location (the host posture's
        /// recorded or declared local names), opened over the walk's spare source and kept open; <see langword="false"/>,
        /// having done nothing, for every other case.
        /// </summary>
        private bool TryGateLocalBacking(int index, FormatSource referrer, ImageReference reference, out (ReferenceDecision Decision, IImageSource? Source) gated)
        {
            gated = default;
            if (reference.FullName is not { } name || !reference.IsLocalPath
                || referrer == FormatSource.Probed || Policy.Posture == TrustPosture.UntrustedImage || !_localReferrer)
            {
                return false;
            }

            IImageSourceProvider? provider = null;
            foreach (IImageSourceProvider candidate in _resolver._options.SourceProviders)
            {
                if (candidate.CanOpen(reference))
                {
                    provider = candidate;
                    break;
                }
            }

            if (provider is not FileImageSourceProvider)
            {
                return false;
            }

            // The same rule the general gate applies when the location does not matter (trusted is false, no root).
            TrustBasis basis = TrustJudge.Admit(Policy, referrer, trustedByLocation: false, localReference: true);
            if (basis == TrustBasis.None)
            {
                return false;
            }

            try
            {
                gated = (Record(index, referrer, reference, ReferenceOutcome.Opened, basis, null, null, null), Keep(ReopenFile(name, DirectoryOf(name)), keepOpen: true));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                gated = (OpenFailed(index, referrer, reference, basis, null, ex), null);
            }

            return true;
        }

        /// <summary>
        /// Opens a backing file into the spare source (see <see cref="FileImageSource.Reopen"/>), from
        /// <paramref name="directory"/> when it is a descriptor of the file's directory.
        /// </summary>
        private FileImageSource ReopenFile(string name, int directory = -1)
        {
            FileImageSource file;
            try
            {
                file = FileImageSource.Reopen(name, _spare, directory);
            }
            catch (IOException ex) when (ex.HResult is UnixErrors.EMFILE or UnixErrors.ENFILE && _closes.Count > 0)
            {
                // Out of descriptors while the walk still holds those of layers it has read: give them back, once.
                _closes.CloseAll();
                file = FileImageSource.Reopen(name, _spare, directory);
            }

            if (ReferenceEquals(file, _spare))
            {
                _spare = null;
            }

            return file;
        }

        /// <summary>
        /// A descriptor of <paramref name="name"/>'s directory when the previous backing file the plain gate opened
        /// lay in the same one, spelled the same way (opened now, on the second such file); else -1, and the
        /// descriptor of another directory is given up. Used only where the trust rule does not look at where a file
        /// lies: then a lookup from the directory as it was found a moment ago, instead of by the whole name again,
        /// changes no decision.
        /// </summary>
        private int DirectoryOf(string name)
        {
            string? previous = _previousBacking;
            int previousStart = _previousStart;
            int start = UnixFile.LastComponentStart(name);
            _previousBacking = name;
            _previousStart = start;
            if (start == 0 || previous is null || previousStart != start
                || !name.AsSpan(0, start).SequenceEqual(previous.AsSpan(0, start)))
            {
                ReleaseDirectory();
                return -1;
            }

            if (_directory == -1)
            {
                int opened = UnixFile.TryOpenDirectory(name);
                _directory = opened >= 0 ? opened : NoDirectory;
            }

            return _directory >= 0 ? _directory : -1;
        }

        private void ReleaseDirectory()
        {
            if (_directory >= 0)
            {
                _closes.Add(_directory);
            }

            _directory = -1;
        }

        /// <summary>Records a file the gate admitted but could not open, with its finding.</summary>
        private ReferenceDecision OpenFailed(int index, FormatSource referrer, ImageReference reference, TrustBasis basis, string? canonical, Exception ex)
        {
            string name = reference.FullName!;
            string reason = DescribeOpenFailure(ex);
            ResolverLog.OpenFailed(Logger, name, reason);
            _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, $"Could not open '{name}': {reason}") { Reference = reference });
            ReferenceOutcome outcome = ex is FileNotFoundException or DirectoryNotFoundException ? ReferenceOutcome.Missing : ReferenceOutcome.Unreadable;
            return Record(index, referrer, reference, outcome, basis, canonical, null, reason);
        }

        private async ValueTask<(ReferenceDecision Decision, IImageSource? Source)> GateAnyAsync(
            int index, FormatSource referrer, ImageReference reference, bool keepOpen, bool reuse, CancellationToken cancellationToken)
        {
            IImageSourceProvider? provider = null;
            if (reference.FullName is not null)
            {
                foreach (IImageSourceProvider candidate in _resolver._options.SourceProviders)
                {
                    if (candidate.CanOpen(reference))
                    {
                        provider = candidate;
                        break;
                    }
                }
            }

            if (provider is null)
            {
                string why = reference.Kind switch
                {
                    ReferenceKind.WindowsPath => $"'{reference.StoredName}' is a Windows path; it is not opened as a local path.",
                    ReferenceKind.RelativePath when reference.FullName is null => $"'{reference.StoredName}' is a relative name and the image has no location to resolve it against, so it is not followed.",
                    ReferenceKind.RelativePath or ReferenceKind.AbsolutePath => $"'{reference.StoredName}' resolves to '{reference.FullName}'; no source is configured for it, so it is not followed.",
                    _ => $"'{reference.StoredName}' is a {reference.Kind.ToString().ToLowerInvariant()} reference; no source is configured for it, so it is not followed.",
                };
                string code = reference.Kind == ReferenceKind.RelativePath && reference.FullName is null ? FindingCodes.UnreachableImage : FindingCodes.ProtocolReference;
                _findings.Add(new ChainFinding(code, index, why) { Reference = reference });
                return (Record(index, referrer, reference, ReferenceOutcome.NotFollowed, TrustBasis.None, null, null, null), null);
            }

            string name = reference.FullName!;

            // The location matters only where the rule asks for trust: a probed referrer, the untrusted-image posture,
            // a URL (the host posture's word on a format does not extend to the servers it names), or a name in a header
            // read from another machine. Otherwise (the host posture's declared and recorded local names in local
            // images) no symlink is resolved for a name the rule lets through.
            bool locationMatters = referrer == FormatSource.Probed || Policy.Posture == TrustPosture.UntrustedImage || !reference.IsLocalPath || !_localReferrer;
            (bool trusted, string? canonical, string? root) = locationMatters ? _locations.Judge(reference) : (false, null, null);
            TrustBasis basis = TrustJudge.Admit(Policy, referrer, trusted, reference.IsLocalPath, _localReferrer);

            // A pin is a name the host chose: only a reference spelling a pinned location is opened to be hashed;
            // any other name the rule refuses is never opened, looked up or hashed, whatever is there.
            if (basis == TrustBasis.None && Policy.PinsImages && PinKey(reference, canonical) is { } pinKey
                && Policy.PinsAt(pinKey) is { IsEmpty: false } pins)
            {
                (IImageSource? pinned, string? digest) = await TryOpenPinnedAsync(provider, name, pins, cancellationToken).ConfigureAwait(false);
                if (pinned is not null)
                {
                    ReferenceDecision byDigest = Record(index, referrer, reference, ReferenceOutcome.Opened, TrustBasis.Digest, canonical, digest, null);
                    return (byDigest, Keep(pinned, keepOpen));
                }
            }

            if (basis == TrustBasis.None)
            {
                // The same words whether the file exists or not, is too large to hash or does not match a pin.
                ResolverLog.ReferenceRefused(Logger, name, index);
                string message = $"Could not open '{name}': not allowed by the trust policy";
                _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, message) { Reference = reference });
                return (Record(index, referrer, reference, ReferenceOutcome.Refused, TrustBasis.None, canonical, null, null), null);
            }

            if (basis == TrustBasis.Location && root is not null && provider is FileImageSourceProvider)
            {
                return OpenConfined(index, referrer, reference, root, keepOpen);
            }

            try
            {
                IImageSource source;
                if (provider is HttpImageSourceProvider http)
                {
                    // A redirect is the server naming another URL: the same rule judges it, and the URL read is recorded.
                    HttpImageSource read = await http.OpenAsync(name, HttpRedirects.Gate(Policy, referrer, reference), cancellationToken).ConfigureAwait(false);
                    if (read.RedirectBasis is { } redirectBasis)
                    {
                        basis = HttpRedirects.Weaker(basis, redirectBasis);
                        canonical = read.Url;
                    }

                    source = read;
                }
                else if (reuse && provider is FileImageSourceProvider)
                {
                    source = ReopenFile(name);
                }
                else
                {
                    source = await provider.OpenAsync(name, cancellationToken).ConfigureAwait(false);
                }

                return (Record(index, referrer, reference, ReferenceOutcome.Opened, basis, canonical, null, null), Keep(source, keepOpen));
            }
            catch (HttpRedirectRefusedException refused)
            {
                ResolverLog.ReferenceRefused(Logger, refused.Target, index);
                string message = $"Could not open '{name}': it redirects to '{refused.Target}', which is not allowed by the trust policy";
                _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, message) { Reference = reference });
                return (Record(index, referrer, reference, ReferenceOutcome.Refused, TrustBasis.None, refused.Target, null, null), null);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                return (OpenFailed(index, referrer, reference, basis, canonical, ex), null);
            }
        }

        /// <summary>
        /// A file trusted because it lies under a root is opened beneath that root, decided on what the kernel opened
        /// (not on the name canonicalised a moment before), so a symlink swapped in between cannot lead outside.
        /// </summary>
        private (ReferenceDecision Decision, IImageSource? Source) OpenConfined(int index, FormatSource referrer, ImageReference reference, string root, bool keepOpen)
        {
            string name = reference.FullName!;
            ConfinedOpenResult opened = FileImageSource.OpenBeneath(root, name);
            if (opened.Outcome == ConfinedOpenOutcome.Opened && opened.Source is { } source)
            {
                return (Record(index, referrer, reference, ReferenceOutcome.Opened, TrustBasis.Location, source.CanonicalPath, null, null), Keep(source, keepOpen));
            }

            if (opened.Outcome == ConfinedOpenOutcome.OutsideRoot)
            {
                // It moved out of the root between the judgement and the open: refused, in the usual words.
                ResolverLog.ReferenceRefused(Logger, name, index);
                _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, $"Could not open '{name}': not allowed by the trust policy") { Reference = reference });
                return (Record(index, referrer, reference, ReferenceOutcome.Refused, TrustBasis.None, null, null, null), null);
            }

            string reason = opened.Reason;
            ResolverLog.OpenFailed(Logger, name, reason);
            _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, $"Could not open '{name}': {reason}") { Reference = reference });
            ReferenceOutcome outcome = opened.Outcome == ConfinedOpenOutcome.Missing ? ReferenceOutcome.Missing : ReferenceOutcome.Unreadable;
            return (Record(index, referrer, reference, outcome, TrustBasis.Location, null, null, reason), null);
        }

        private IImageSource Keep(IImageSource source, bool keepOpen)
        {
            if (keepOpen)
            {
                _opened.Add(source);
            }

            return source;
        }

        private static ReferenceDecision Record(int index, FormatSource referrer, ImageReference reference, ReferenceOutcome outcome, TrustBasis basis, string? canonical, string? sha256, string? detail) =>
            new(index, referrer, reference, outcome, basis, canonical, sha256, detail);

        /// <summary>
        /// The text a reference's name is compared with pinned locations in: a local name made absolute and cleaned
        /// without looking at the file system, or a URL in the normal form the location rule already computed.
        /// </summary>
        private static string? PinKey(ImageReference reference, string? normalizedUrl)
        {
            if (reference.IsLocalPath)
            {
                return reference.FullName is { } local ? ImagePin.CleanLocalName(ConfinedOpen.Absolute(local)) : null;
            }

            return normalizedUrl;
        }

        /// <summary>
        /// A pin vouches for the content at a location the host named: the file there is opened only to be hashed —
        /// a regular file no larger than the policy's bound, never a device — and nothing is read from it as an image
        /// unless its digest is one pinned for that location.
        /// </summary>
        private async ValueTask<(IImageSource? Source, string? Digest)> TryOpenPinnedAsync(
            IImageSourceProvider provider, string name, ImmutableArray<ImagePin> pins, CancellationToken cancellationToken)
        {
            IImageSource source;
            try
            {
                source = await provider.OpenAsync(name, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                return (null, null);
            }

            try
            {
                if (source is FileImageSource { IsRegularFile: false } || source.Length > Policy.MaxDigestFileLength)
                {
                    source.Dispose();
                    return (null, null);
                }

                string digest = await HashAsync(source, cancellationToken).ConfigureAwait(false);
                foreach (ImagePin pin in pins)
                {
                    if (pin.Sha256 == digest)
                    {
                        return (source, digest);
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A file that cannot be read to its end cannot match a pin.
            }

            source.Dispose();
            return (null, null);
        }

        private static async ValueTask<string> HashAsync(IImageSource source, CancellationToken cancellationToken)
        {
            const int ChunkSize = 1024 * 1024;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
            try
            {
                long offset = 0;
                while (offset < source.Length)
                {
                    int read = await source.ReadAtAsync(offset, buffer.AsMemory(0, ChunkSize), cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    hash.AppendData(buffer, 0, read);
                    offset += read;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }

        private void CloseOpened(IImageSource? keep)
        {
            for (int i = _opened.Count - 1; i >= 0; i--)
            {
                if (!ReferenceEquals(_opened[i], keep))
                {
                    if (_opened[i] is FileImageSource { IsReopened: true } file && file.DetachDescriptor() is int fd and >= 0)
                    {
                        _closes.Add(fd);
                    }
                    else
                    {
                        _opened[i].Dispose();
                    }

                    _opened.RemoveAt(i);
                }
            }
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

        private ImageChain End(ChainEnding ending, string? message)
        {
            ResolverLog.ChainEnded(Logger, _layers.Count > 0 ? _layers[0].FileName : "?", ending, _layers.Count);
            return new ImageChain(_layers.ToImmutable(), ending, _findings.ToImmutable(), message, Policy, _decisions.ToImmutable(), readerFaults: _readerFaults, unreadLayer: _unread);
        }

        public void Dispose()
        {
            foreach (IImageSource source in _opened)
            {
                source.Dispose();
            }

            ReleaseDirectory();
            _closes.CloseAll();
            ArrayPool<byte>.Shared.Return(_head);
            _layers.Dispose();
            _decisions.Dispose();
            _findings.Dispose();
            _visited.Dispose();
        }
    }
}
