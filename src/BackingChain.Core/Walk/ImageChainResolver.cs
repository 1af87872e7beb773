using System;
using System.Collections.Immutable;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Detection;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Trust;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

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
        format ??= Catalogued(path);
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
            IImageSourceProvider? provider = top.FullName is null ? null : ReferenceGate.FindProvider(_options.SourceProviders, top);

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
        var walk = new ChainWalk(_options, _logger, topDetection, topHasLocation, declared, memo);
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

    /// <summary>The format the configured catalog records for a local image, or <see langword="null"/> (no catalog, no record, a name that is no path).</summary>
    internal ImageFormat? Catalogued(string path) => Catalogued(_options.FormatCatalog, path);

    /// <summary>The format <paramref name="catalog"/> records for a local image (see <see cref="Catalogued(string)"/>).</summary>
    internal static ImageFormat? Catalogued(IImageFormatCatalog? catalog, string path)
    {
        if (catalog is null)
        {
            return null;
        }

        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return null;
        }

        // Unknown is no format to read an image as: taken as "not recorded", so the image is probed as without a catalog.
        return catalog.TryGetFormat(full, out ImageFormat format) && format != ImageFormat.Unknown ? format : null;
    }

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
}
