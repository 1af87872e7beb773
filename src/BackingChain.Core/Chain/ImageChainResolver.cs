using System;
using System.Buffers;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Detection;
using BackingChain.Formats;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Trust;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackingChain.Chain;

/// <summary>
/// Walks a backing chain from its top image down, with qemu's path rules, asking the trust policy before
/// opening anything a reference names. Chain problems (missing, loop, too deep, refused, malformed) are
/// returned as the chain's <see cref="ImageChain.Ending"/> and findings, never thrown.
/// </summary>
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

    /// <summary>Resolves the chain of a local image. Local files are read synchronously, so this completes without waiting.</summary>
    /// <param name="path">The top image's path, kept verbatim as qemu keeps it.</param>
    /// <param name="format">The declared format (like <c>-f</c>), or <see langword="null"/> to probe.</param>
    /// <returns>The chain.</returns>
    public ImageChain Resolve(string path, ImageFormat? format = null) =>
        ResolveAsync(path, format).AsTask().GetAwaiter().GetResult();

    /// <summary>Resolves the chain of a local image.</summary>
    /// <param name="path">The top image's path, kept verbatim as qemu keeps it.</param>
    /// <param name="format">The declared format (like <c>-f</c>), or <see langword="null"/> to probe.</param>
    /// <param name="cancellationToken">Cancels the walk.</param>
    /// <returns>The chain.</returns>
    public async ValueTask<ImageChain> ResolveAsync(string path, ImageFormat? format = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        IImageSource top;
        try
        {
            top = FileImageSource.Open(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            string message = $"Could not open '{path}': {DescribeOpenFailure(ex)}";
            return new ImageChain(
                ImmutableArray<ChainLayer>.Empty,
                ChainEnding.Missing,
                [new ChainFinding(FindingCodes.UnreachableImage, 0, message)],
                message);
        }

        using (top)
        {
            return await ResolveAsync(top, format, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Resolves the chain of an image from any source. References are opened through the configured providers.</summary>
    /// <param name="top">The top image; the caller keeps ownership.</param>
    /// <param name="format">The declared format, or <see langword="null"/> to probe.</param>
    /// <param name="cancellationToken">Cancels the walk.</param>
    /// <returns>The chain.</returns>
    public async ValueTask<ImageChain> ResolveAsync(IImageSource top, ImageFormat? format = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(top);
        var walk = new Walk(this);
        try
        {
            return await walk.RunAsync(top, format, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            walk.Dispose();
        }
    }

    private static string DescribeOpenFailure(Exception ex) => ex switch
    {
        FileNotFoundException or DirectoryNotFoundException => "No such file or directory",
        UnauthorizedAccessException => "Permission denied",
        _ => ex.Message,
    };

    /// <summary>The state of one walk; owns every source it opens past the top.</summary>
    private sealed class Walk : IDisposable
    {
        private readonly ImageChainResolver _resolver;
        private readonly List<IImageSource> _opened = [];
        private readonly ImmutableArray<ChainLayer>.Builder _layers = ImmutableArray.CreateBuilder<ChainLayer>();
        private readonly ImmutableArray<ChainFinding>.Builder _findings = ImmutableArray.CreateBuilder<ChainFinding>();
        private readonly HashSet<ImageSourceIdentity> _visited = [];
        private readonly byte[] _head = ArrayPool<byte>.Shared.Rent(ImageReadLimits.HeadLength);

        // Side references a format reader already opened through the gate (VMDK extents), so they are not checked twice.
        private readonly HashSet<(int Layer, string Name)> _gated = [];

        // Digests computed once per image when the policy pins digests.
        private readonly Dictionary<ImageSourceIdentity, string> _digests = [];

        public Walk(ImageChainResolver resolver) => _resolver = resolver;

        private TrustPolicy Policy => _resolver._options.Policy;

        private ILogger Logger => _resolver._logger;

        public async ValueTask<ImageChain> RunAsync(IImageSource top, ImageFormat? declared, CancellationToken cancellationToken)
        {
            IImageSource source = top;
            ImageFormat? format = declared;
            FormatSource formatSource = declared is null ? FormatSource.Probed : FormatSource.Declared;
            bool locationTrusted = Policy.IsPathTrusted(top.Name);
            _visited.Add(top.Identity);

            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int index = _layers.Count;
                (ChainLayer? layer, string? error) = await ReadLayerAsync(source, format, formatSource, locationTrusted, index, cancellationToken).ConfigureAwait(false);
                if (layer is null)
                {
                    return End(ChainEnding.Malformed, error);
                }

                _layers.Add(layer);
                ResolverLog.LayerRead(Logger, index, layer.Filename, layer.Format, layer.FormatSource);

                await CheckSideReferencesAsync(layer, index, cancellationToken).ConfigureAwait(false);

                ImageReference? backing = layer.Backing;
                if (backing is null)
                {
                    return End(ChainEnding.Complete, null);
                }

                if (_layers.Count >= _resolver._options.MaxDepth)
                {
                    string message = $"The backing chain is deeper than {_resolver._options.MaxDepth} images.";
                    _findings.Add(new ChainFinding(FindingCodes.ChainTooDeep, index, message));
                    return End(ChainEnding.TooDeep, message);
                }

                (IImageSource? next, ChainEnding? stop, string? stopMessage, bool trusted) = await OpenReferenceAsync(layer, backing, index, cancellationToken).ConfigureAwait(false);
                if (next is null)
                {
                    return End(stop ?? ChainEnding.Missing, stopMessage);
                }

                if (!_visited.Add(next.Identity))
                {
                    string message = $"Backing file '{backing.FullName}' creates an infinite loop.";
                    _findings.Add(new ChainFinding(FindingCodes.BackingLoop, index, message));
                    return End(ChainEnding.Loop, message);
                }

                source = next;
                locationTrusted = trusted;
                if (backing.RecordedFormat is null)
                {
                    format = null;
                    formatSource = FormatSource.Probed;
                }
                else if (ImageFormatNames.TryParse(backing.RecordedFormat, out ImageFormat recorded))
                {
                    format = recorded;
                    formatSource = FormatSource.Recorded;
                }
                else
                {
                    string message = $"Could not open '{backing.FullName}': Unknown driver '{backing.RecordedFormat}'";
                    _findings.Add(new ChainFinding(FindingCodes.UnsupportedFeature, index + 1, message));
                    return End(ChainEnding.Malformed, message);
                }
            }
        }

        private async ValueTask<(ChainLayer? Layer, string? Error)> ReadLayerAsync(
            IImageSource source, ImageFormat? format, FormatSource formatSource, bool locationTrusted, int index, CancellationToken cancellationToken)
        {
            int headLength = (int)Math.Min(ImageReadLimits.HeadLength, source.Length);
            int read = await source.ReadAtAsync(0, _head.AsMemory(0, headLength), cancellationToken).ConfigureAwait(false);
            ReadOnlyMemory<byte> head = _head.AsMemory(0, read);
            ImageFormat probed = ImageFormatDetector.Detect(head.Span, source.Name, source.Length);
            ImageFormat used = format ?? probed;

            IImageFormatReader? reader = FormatReaders.Get(used);
            if (reader is null)
            {
                string message = $"Could not open '{source.Name}': format '{used.GetQemuName()}' is not supported";
                _findings.Add(new ChainFinding(FindingCodes.UnsupportedFeature, index, message));
                return (null, message);
            }

            LayerFacts facts;
            try
            {
                var context = new LayerReadContext(
                    source,
                    head,
                    (stored, token) => OpenSideReferenceAsync(source, formatSource, stored, index, token));
                facts = await reader.ReadAsync(context, cancellationToken).ConfigureAwait(false);
            }
            catch (ImageFormatException ex)
            {
                facts = LayerFacts.Failed(ex.Error, ex.Message);
            }
            catch (IOException ex)
            {
                facts = LayerFacts.Failed(HeaderError.Truncated, ex.Message);
            }
            catch (Exception ex) when (ex is ArgumentException or IndexOutOfRangeException or OverflowException or InvalidOperationException)
            {
                // Defence in depth: a reader that trips over bytes it failed to validate must still give the
                // caller a finding for this hostile image, never an exception out of the walk.
                facts = LayerFacts.Failed(HeaderError.Inconsistent, $"the {used.GetQemuName()} header could not be read ({ex.GetType().Name})");
            }

            if (used != probed && used != ImageFormat.Raw)
            {
                _findings.Add(new ChainFinding(
                    FindingCodes.FormatMismatch,
                    index,
                    $"'{source.Name}' is read as {used.GetQemuName()} ({formatSource.ToString().ToLowerInvariant()}) but its content probes as {probed.GetQemuName()}."));
            }

            if (facts.Error != HeaderError.None)
            {
                string message = $"Could not open '{source.Name}': {facts.ErrorMessage}";
                string code = facts.Error == HeaderError.UnsupportedFeature ? FindingCodes.UnsupportedFeature : FindingCodes.MalformedHeader;
                _findings.Add(new ChainFinding(code, index, message));
                return (null, message);
            }

            var references = ImmutableArray.CreateBuilder<ImageReference>(facts.References.Count);
            foreach (StoredReference stored in facts.References)
            {
                references.Add(QemuPaths.ToReference(source.Name, stored.Name, stored.Role, stored.RecordedFormat));
            }

            string? digest = null;
            if (Policy.PinsDigests && !_digests.TryGetValue(source.Identity, out digest))
            {
                digest = await HashAsync(source, cancellationToken).ConfigureAwait(false);
                _digests[source.Identity] = digest;
            }

            var layer = new ChainLayer
            {
                Filename = source.Name,
                Format = used,
                FormatSource = formatSource,
                ProbedFormat = probed,
                Identity = source.Identity,
                VirtualSize = facts.VirtualSize,
                ActualSize = source.AllocatedSize + facts.AdditionalAllocatedSize,
                ClusterSize = facts.ClusterSize,
                DirtyFlag = facts.DirtyFlag,
                Encrypted = facts.Encrypted,
                References = references.MoveToImmutable(),
                FormatSpecific = facts.FormatSpecific,
                Sha256 = digest,
                IsLocationTrusted = locationTrusted,
            };
            return (layer, null);
        }

        /// <summary>References other than the backing one (data files, extents): put to the policy, and checked to be present.</summary>
        private async ValueTask CheckSideReferencesAsync(ChainLayer layer, int index, CancellationToken cancellationToken)
        {
            ImageReference? backing = layer.Backing;
            foreach (ImageReference reference in layer.References)
            {
                if (ReferenceEquals(reference, backing))
                {
                    continue;
                }

                if (reference.Role == ReferenceRole.ExternalDataFile)
                {
                    _findings.Add(new ChainFinding(FindingCodes.ExternalDataFile, index, $"'{layer.Filename}' keeps its data in the external file '{reference.StoredName}'."));
                }
                else if (reference.Role == ReferenceRole.VmdkExtent)
                {
                    _findings.Add(new ChainFinding(FindingCodes.ExternalExtent, index, $"'{layer.Filename}' names the extent file '{reference.StoredName}'."));
                }

                if (_gated.Contains((index, reference.StoredName)))
                {
                    continue;
                }

                (IImageSource? opened, _, _, _) = await OpenReferenceAsync(layer, reference, index, cancellationToken).ConfigureAwait(false);
                opened?.Dispose();
                if (opened is not null)
                {
                    _opened.Remove(opened);
                }
            }
        }

        /// <summary>A format reader needs a file the image names (before the layer exists): the same gate, judged by the layer's format source.</summary>
        private async ValueTask<IImageSource?> OpenSideReferenceAsync(
            IImageSource referrer, FormatSource formatSource, StoredReference stored, int index, CancellationToken cancellationToken)
        {
            _gated.Add((index, stored.Name));
            ImageReference reference = QemuPaths.ToReference(referrer.Name, stored.Name, stored.Role, stored.RecordedFormat);
            var provisional = new ChainLayer { Filename = referrer.Name, Format = ImageFormat.Unknown, FormatSource = formatSource };
            (IImageSource? source, _, _, _) = await OpenReferenceAsync(provisional, reference, index, cancellationToken).ConfigureAwait(false);
            return source;
        }

        /// <summary>The gate: classify, ask the policy, and only then open.</summary>
        private async ValueTask<(IImageSource? Source, ChainEnding? Stop, string? Message, bool Trusted)> OpenReferenceAsync(
            ChainLayer layer, ImageReference reference, int index, CancellationToken cancellationToken)
        {
            string name = reference.FullName ?? reference.StoredName;
            IImageSourceProvider? provider = null;
            foreach (IImageSourceProvider candidate in _resolver._options.SourceProviders)
            {
                if (candidate.CanOpen(reference))
                {
                    provider = candidate;
                    break;
                }
            }

            if (provider is null)
            {
                string message = reference.Kind switch
                {
                    ReferenceKind.WindowsPath => $"'{reference.StoredName}' is a Windows path; it is not opened as a local path.",
                    _ => $"'{reference.StoredName}' is a {reference.Kind.ToString().ToLowerInvariant()} reference; no source is configured for it, so it is not followed.",
                };
                _findings.Add(new ChainFinding(FindingCodes.ProtocolReference, index, message));
                return (null, ChainEnding.Refused, $"Could not open '{name}': {message}", false);
            }

            string? canonical = reference.IsLocalPath && Policy.UsesCanonicalPaths ? RealPath.TryResolve(name) : null;
            bool trusted = Policy.IsLocationTrusted(reference, canonical);
            bool authentic = layer.FormatSource != FormatSource.Probed;
            bool allowed = trusted
                || (authentic && !Policy.RestrictToTrustedLocations)
                || Policy.FollowUntrustedReferences;
            if (!allowed && Policy.PinsDigests && reference.IsLocalPath)
            {
                // A pinned digest may vouch for an image anywhere: open it only to hash it (regular files and
                // block devices only), and read nothing from it unless the digest matches.
                IImageSource? pinned = await TryOpenPinnedAsync(provider, name, cancellationToken).ConfigureAwait(false);
                if (pinned is not null)
                {
                    _opened.Add(pinned);
                    return (pinned, null, null, false);
                }
            }

            if (!allowed)
            {
                // Missing and not allowed read the same, so the caller learns nothing about files it may not see.
                ResolverLog.ReferenceRefused(Logger, name, index);
                string message = $"Could not open '{name}': missing, or not allowed by the trust policy";
                _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, message));
                return (null, ChainEnding.Refused, message, false);
            }

            try
            {
                IImageSource source = await provider.OpenAsync(name, cancellationToken).ConfigureAwait(false);
                _opened.Add(source);
                return (source, null, null, trusted);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                string reason = DescribeOpenFailure(ex);
                ResolverLog.OpenFailed(Logger, name, reason);
                string message = trusted || !Policy.RestrictToTrustedLocations
                    ? $"Could not open '{name}': {reason}"
                    : $"Could not open '{name}': missing, or not allowed by the trust policy";
                _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, message));
                return (null, ChainEnding.Missing, message, false);
            }
        }

        private async ValueTask<IImageSource?> TryOpenPinnedAsync(IImageSourceProvider provider, string name, CancellationToken cancellationToken)
        {
            IImageSource source;
            try
            {
                source = await provider.OpenAsync(name, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return null;
            }

            string digest = await HashAsync(source, cancellationToken).ConfigureAwait(false);
            if (Policy.IsDigestTrusted(digest))
            {
                _digests[source.Identity] = digest;
                return source;
            }

            source.Dispose();
            return null;
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

        private ImageChain End(ChainEnding ending, string? message)
        {
            ResolverLog.ChainEnded(Logger, _layers.Count > 0 ? _layers[0].Filename : "?", ending, _layers.Count);
            return new ImageChain(_layers.ToImmutable(), ending, _findings.ToImmutable(), message);
        }

        public void Dispose()
        {
            foreach (IImageSource source in _opened)
            {
                source.Dispose();
            }

            ArrayPool<byte>.Shared.Return(_head);
        }
    }
}
