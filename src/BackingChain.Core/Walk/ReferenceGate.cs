using System;
using System.Buffers;
using System.Collections.Immutable;
using System.IO;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Trust;
using Microsoft.Extensions.Logging;

using BackingChain.Chain;

namespace BackingChain.Walk;

/// <summary>
/// The gate every file a layer names goes through, in three steps: the provider that serves the name is chosen
/// (once), the trust rule answers (<see cref="TrustJudge.Admit"/>, with a pinned digest as the last resort when
/// <see cref="DigestEligibility"/> allows one), and only then is the file opened — beneath its trusted root when
/// its location is what vouches for it. Every outcome is recorded as a <see cref="ReferenceDecision"/> and, when it
/// stops a file from being used, as a finding that carries the reference. A refused name is never opened.
/// </summary>
internal sealed class ReferenceGate
{
    private readonly TrustPolicy _policy;
    private readonly ImmutableArray<IImageSourceProvider> _providers;
    private readonly TrustLocations _locations;
    private readonly PooledList<ChainFinding> _findings;
    private readonly WalkSources _sources;
    private readonly ILogger _logger;

    public ReferenceGate(TrustPolicy policy, ImmutableArray<IImageSourceProvider> providers, PooledList<ChainFinding> findings, WalkSources sources, ILogger logger)
    {
        _policy = policy;
        _providers = providers;
        _locations = new TrustLocations(policy);
        _findings = findings;
        _sources = sources;
        _logger = logger;
    }

    /// <summary>Whether the layer whose references come to the gate was read from this machine (<see cref="ImageSourceIdentity.IsLocal"/>).</summary>
    public bool LocalReferrer { get; set; } = true;

    /// <summary>How a walk ends at a file the gate did not open: refused (or not followed) by the rule, or missing.</summary>
    public static ChainEnding EndingFor(ReferenceOutcome outcome) =>
        outcome is ReferenceOutcome.Refused or ReferenceOutcome.NotFollowed ? ChainEnding.Refused : ChainEnding.Missing;

    /// <summary>The first provider that serves the reference's kind of name, or <see langword="null"/>.</summary>
    public static IImageSourceProvider? FindProvider(ImmutableArray<IImageSourceProvider> providers, ImageReference reference)
    {
        foreach (IImageSourceProvider candidate in providers)
        {
            if (candidate.CanOpen(reference))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>A decision, as recorded in the chain.</summary>
    public static ReferenceDecision Record(int index, FormatSource referrer, ImageReference reference, ReferenceOutcome outcome, TrustBasis basis, string? canonical, string? sha256, string? detail) =>
        new(index, referrer, reference, outcome, basis, canonical, sha256, detail);

    /// <summary>Puts one reference to the gate.</summary>
    /// <param name="index">The index of the layer naming it.</param>
    /// <param name="referrer">Where that layer's format came from.</param>
    /// <param name="reference">The reference.</param>
    /// <param name="keepOpen">Whether the source is kept open until the walk is done with the layer (else the caller disposes it).</param>
    /// <param name="cancellationToken">Cancels the open.</param>
    /// <param name="reuse">Whether it is the layer's backing file, which a local file is reopened into the walk's spare source for.</param>
    /// <returns>The decision, and the source when the file was opened.</returns>
    public ValueTask<(ReferenceDecision Decision, IImageSource? Source)> GateAsync(
        int index, FormatSource referrer, ImageReference reference, bool keepOpen, CancellationToken cancellationToken, bool reuse = false)
    {
        IImageSourceProvider? provider = reference.FullName is null ? null : FindProvider(_providers, reference);
        if (provider is null)
        {
            return new(NotFollowed(index, referrer, reference));
        }

        // The location matters only where the rule asks for trust: a probed referrer, the untrusted-image posture, a
        // URL (the host posture's word on a format does not extend to the servers it names), or a name in a header
        // read from another machine. Otherwise (the host posture's declared and recorded local names in local images)
        // no symlink is resolved for a name the rule lets through.
        bool locationMatters = TrustJudge.LocationMatters(_policy.Posture, referrer, reference.IsLocalPath, LocalReferrer);
        bool localFiles = provider is IKnownSourceProvider { OpensLocalFiles: true };
        if (!locationMatters && reuse && localFiles)
        {
            // The backing file of nearly every layer: opened synchronously (no state machine per layer), looked up
            // from its directory's descriptor when it lies where the previous one did.
            return new(OpenLocalBacking(index, referrer, reference));
        }

        return GateAnyAsync(provider, locationMatters, localFiles, index, referrer, reference, keepOpen, reuse, cancellationToken);
    }

    private (ReferenceDecision Decision, IImageSource? Source) OpenLocalBacking(int index, FormatSource referrer, ImageReference reference)
    {
        string name = reference.FullName!;
        TrustBasis basis = TrustJudge.Admit(_policy, referrer, trustedByLocation: false, localReference: true, LocalReferrer);
        try
        {
            FileImageSource file = _sources.Reopen(name, fromDirectory: true);
            return (Record(index, referrer, reference, ReferenceOutcome.Opened, basis, null, null, null), file);
        }
        catch (Exception ex) when (IsOpenFailure(ex))
        {
            return OpenFailed(index, referrer, reference, basis, null, ex);
        }
    }

    private async ValueTask<(ReferenceDecision Decision, IImageSource? Source)> GateAnyAsync(
        IImageSourceProvider provider, bool locationMatters, bool localFiles, int index, FormatSource referrer, ImageReference reference, bool keepOpen, bool reuse,
        CancellationToken cancellationToken)
    {
        string name = reference.FullName!;
        (bool trusted, string? canonical, string? root) = locationMatters ? _locations.Judge(reference) : (false, null, null);
        TrustBasis basis = TrustJudge.Admit(_policy, referrer, trusted, reference.IsLocalPath, LocalReferrer);

        ImmutableArray<ImagePin> pins = DigestEligibility.PinsFor(_policy, basis, reference, canonical);
        if (!pins.IsEmpty)
        {
            (IImageSource? pinned, string? digest) = await OpenPinnedAsync(provider, name, pins, cancellationToken).ConfigureAwait(false);
            if (pinned is not null)
            {
                return (Record(index, referrer, reference, ReferenceOutcome.Opened, TrustBasis.Digest, canonical, digest, null), _sources.Keep(pinned, keepOpen));
            }
        }

        if (basis == TrustBasis.None)
        {
            // The same words whether the file exists or not, is too large to hash or does not match a pin.
            return Refuse(index, referrer, reference, canonical);
        }

        if (basis == TrustBasis.Location && root is not null && localFiles)
        {
            return OpenConfined(index, referrer, reference, root, keepOpen);
        }

        try
        {
            IImageSource source;
            if (reuse && localFiles)
            {
                source = _sources.Reopen(name, fromDirectory: false);
                return (Record(index, referrer, reference, ReferenceOutcome.Opened, basis, canonical, null, null), source);
            }

            if (provider is IKnownSourceProvider known)
            {
                AdmittedSource admitted = await known.OpenAdmittedAsync(name, _policy, referrer, reference, cancellationToken).ConfigureAwait(false);
                if (admitted.RedirectBasis is { } redirectBasis)
                {
                    // The server named another URL, which the same rule judged: the URL read is recorded.
                    basis = HttpRedirects.Weaker(basis, redirectBasis);
                    canonical = admitted.ReadUrl;
                }

                source = admitted.Source;
            }
            else
            {
                source = await provider.OpenAsync(name, cancellationToken).ConfigureAwait(false);
            }

            return (Record(index, referrer, reference, ReferenceOutcome.Opened, basis, canonical, null, null), _sources.Keep(source, keepOpen));
        }
        catch (HttpRedirectRefusedException refused)
        {
            return Refuse(index, referrer, reference, refused.Target, redirectTarget: refused.Target);
        }
        catch (Exception ex) when (IsOpenFailure(ex))
        {
            return OpenFailed(index, referrer, reference, basis, canonical, ex);
        }
    }

    /// <summary>A reference no configured provider serves, or a relative name with nothing to resolve it against: not followed.</summary>
    private (ReferenceDecision Decision, IImageSource? Source) NotFollowed(int index, FormatSource referrer, ImageReference reference)
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

    /// <summary>
    /// The one refusal: the rule did not allow the file (or the target a URL redirects to), and it is not opened.
    /// The words are the same whatever is there.
    /// </summary>
    private (ReferenceDecision Decision, IImageSource? Source) Refuse(int index, FormatSource referrer, ImageReference reference, string? canonical, string? redirectTarget = null)
    {
        string name = reference.FullName!;
        ResolverLog.ReferenceRefused(_logger, redirectTarget ?? name, index);
        string message = redirectTarget is null
            ? $"Could not open '{name}': not allowed by the trust policy"
            : $"Could not open '{name}': it redirects to '{redirectTarget}', which is not allowed by the trust policy";
        _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, message) { Reference = reference });
        return (Record(index, referrer, reference, ReferenceOutcome.Refused, TrustBasis.None, canonical, null, null), null);
    }

    private static bool IsOpenFailure(Exception ex) => ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException;

    private (ReferenceDecision Decision, IImageSource? Source) OpenFailed(int index, FormatSource referrer, ImageReference reference, TrustBasis basis, string? canonical, Exception ex) =>
        OpenFailed(index, referrer, reference, basis, canonical, ImageChainResolver.DescribeOpenFailure(ex), missing: ex is FileNotFoundException or DirectoryNotFoundException);

    /// <summary>Records a file the gate admitted but could not open, with its finding.</summary>
    private (ReferenceDecision Decision, IImageSource? Source) OpenFailed(
        int index, FormatSource referrer, ImageReference reference, TrustBasis basis, string? canonical, string reason, bool missing)
    {
        string name = reference.FullName!;
        ResolverLog.OpenFailed(_logger, name, reason);
        _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, $"Could not open '{name}': {reason}") { Reference = reference });
        ReferenceOutcome outcome = missing ? ReferenceOutcome.Missing : ReferenceOutcome.Unreadable;
        return (Record(index, referrer, reference, outcome, basis, canonical, null, reason), null);
    }

    /// <summary>
    /// A file trusted because it lies under a root is opened beneath that root, decided on what the kernel opened
    /// (not on the name canonicalised a moment before), so a symlink swapped in between cannot lead outside.
    /// </summary>
    private (ReferenceDecision Decision, IImageSource? Source) OpenConfined(int index, FormatSource referrer, ImageReference reference, string root, bool keepOpen)
    {
        ConfinedOpenResult opened = FileImageSource.OpenBeneath(root, reference.FullName!);
        if (opened.Outcome == ConfinedOpenOutcome.Opened && opened.Source is { } source)
        {
            return (Record(index, referrer, reference, ReferenceOutcome.Opened, TrustBasis.Location, source.CanonicalPath, null, null), _sources.Keep(source, keepOpen));
        }

        // Moved out of the root between the judgement and the open: refused, in the usual words.
        return opened.Outcome == ConfinedOpenOutcome.OutsideRoot
            ? Refuse(index, referrer, reference, canonical: null)
            : OpenFailed(index, referrer, reference, TrustBasis.Location, null, opened.Reason, missing: opened.Outcome == ConfinedOpenOutcome.Missing);
    }

    /// <summary>
    /// A pin vouches for the content at a location the host named: the file there is opened only to be hashed —
    /// as far as <see cref="DigestEligibility.MayHash"/> allows — and nothing is read from it as an image unless its
    /// digest is one pinned for that location.
    /// </summary>
    private async ValueTask<(IImageSource? Source, string? Digest)> OpenPinnedAsync(
        IImageSourceProvider provider, string name, ImmutableArray<ImagePin> pins, CancellationToken cancellationToken)
    {
        IImageSource source;
        try
        {
            source = await provider.OpenAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsOpenFailure(ex))
        {
            return (null, null);
        }

        try
        {
            if (DigestEligibility.MayHash(_policy, source.Length, isDevice: source is IKnownImageSource { IsDevice: true }))
            {
                string digest = await HashAsync(source, cancellationToken).ConfigureAwait(false);
                foreach (ImagePin pin in pins)
                {
                    if (pin.Sha256 == digest)
                    {
                        return (source, digest);
                    }
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
}
