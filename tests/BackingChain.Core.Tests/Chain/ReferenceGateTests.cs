using System;
using System.IO;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using Microsoft.Extensions.Logging.Abstractions;
using BackingChain.Walk;

namespace BackingChain.Tests.Chain;

/// <summary>
/// The gate on its own (<see cref="ReferenceGate"/>): the provider is chosen once, the rule answers before anything
/// is opened, and a name the rule refuses is never handed to a provider — only a pinned location is, to be hashed.
/// </summary>
public sealed class ReferenceGateTests
{
    public static TheoryData<string, FormatSource> RefusedShapes => new()
    {
        { "untrusted posture, declared referrer", FormatSource.Declared },
        { "untrusted posture, recorded referrer", FormatSource.Recorded },
        { "host posture, probed referrer", FormatSource.Probed },
    };

    [Theory]
    [MemberData(nameof(RefusedShapes))]
    public async Task A_refused_name_is_never_opened_though_the_file_is_there(string shape, FormatSource referrer)
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["secret.img"], new byte[4096]);
        TrustPolicy policy = shape.StartsWith("untrusted", StringComparison.Ordinal) ? TrustPolicy.Untrusted : TrustPolicy.Default;
        var spy = new SpyFileProvider();
        using var gate = new Gate(policy, spy);

        (ReferenceDecision decision, IImageSource? source) = await gate.Reference.GateAsync(0, referrer, Backing(dir, "secret.img"), keepOpen: true, CancellationToken.None, reuse: true);

        Assert.Null(source);
        Assert.Empty(spy.Opened);
        Assert.Equal(ReferenceOutcome.Refused, decision.Outcome);
        Assert.Equal(TrustBasis.None, decision.Basis);
        ChainFinding finding = Assert.Single(gate.Findings.ToImmutable());
        Assert.Equal(FindingCodes.UnreachableImage, finding.Code);
        Assert.Equal($"Could not open '{dir["secret.img"]}': not allowed by the trust policy", finding.Message);
        Assert.Same(decision.Reference, finding.Reference);
        Assert.Equal(ChainEnding.Refused, ReferenceGate.EndingFor(decision.Outcome));

        // The library's own file provider, which the gate may open into its spare or beneath a root: refused all the same.
        using var own = new Gate(policy, FileImageSourceProvider.Instance);
        (decision, source) = await own.Reference.GateAsync(0, referrer, Backing(dir, "secret.img"), keepOpen: true, CancellationToken.None, reuse: true);
        Assert.Null(source);
        Assert.Equal((ReferenceOutcome.Refused, TrustBasis.None), (decision.Outcome, decision.Basis));
    }

    [Fact]
    public async Task A_pinned_location_is_opened_to_be_hashed_and_only_a_matching_digest_opens_it_as_an_image()
    {
        using var dir = new ScratchDirectory();
        byte[] content = new byte[8192];
        content[100] = 7;
        File.WriteAllBytes(dir["pinned.img"], content);
        File.WriteAllBytes(dir["other.img"], content);
        string digest = Convert.ToHexStringLower(SHA256.HashData(content));
        string wrong = Convert.ToHexStringLower(SHA256.HashData(new byte[1]));

        // Pinned with its digest: opened (once, to be hashed), and trusted by that digest.
        var spy = new SpyFileProvider();
        using (var gate = new Gate(Pinned(dir["pinned.img"], digest), spy))
        {
            (ReferenceDecision decision, IImageSource? source) = await gate.Reference.GateAsync(0, FormatSource.Declared, Backing(dir, "pinned.img"), keepOpen: true, CancellationToken.None, reuse: true);
            Assert.NotNull(source);
            Assert.Equal((ReferenceOutcome.Opened, TrustBasis.Digest, digest), (decision.Outcome, decision.Basis, decision.Sha256));
            Assert.Equal([dir["pinned.img"]], spy.Opened);
        }

        // Pinned with another digest: hashed, then refused in the usual words.
        spy = new SpyFileProvider();
        using (var gate = new Gate(Pinned(dir["pinned.img"], wrong), spy))
        {
            (ReferenceDecision decision, IImageSource? source) = await gate.Reference.GateAsync(0, FormatSource.Declared, Backing(dir, "pinned.img"), keepOpen: true, CancellationToken.None, reuse: true);
            Assert.Null(source);
            Assert.Equal(ReferenceOutcome.Refused, decision.Outcome);
            Assert.EndsWith("not allowed by the trust policy", Assert.Single(gate.Findings.ToImmutable()).Message, StringComparison.Ordinal);
            Assert.Equal([dir["pinned.img"]], spy.Opened);
        }

        // Another name, with the very same content: never opened while pins exist.
        spy = new SpyFileProvider();
        using (var gate = new Gate(Pinned(dir["pinned.img"], digest), spy))
        {
            (ReferenceDecision decision, IImageSource? source) = await gate.Reference.GateAsync(0, FormatSource.Declared, Backing(dir, "other.img"), keepOpen: true, CancellationToken.None, reuse: true);
            Assert.Null(source);
            Assert.Equal(ReferenceOutcome.Refused, decision.Outcome);
            Assert.Empty(spy.Opened);
        }
    }

    [Theory]
    [InlineData(TrustPosture.Host, FormatSource.Recorded)]
    [InlineData(TrustPosture.Host, FormatSource.Probed)]
    [InlineData(TrustPosture.UntrustedImage, FormatSource.Declared)]
    public async Task The_provider_is_chosen_once_per_name(TrustPosture posture, FormatSource referrer)
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["base.img"], new byte[4096]);
        var counting = new CountingProvider();
        using var gate = new Gate(new TrustPolicy { Posture = posture, FollowUntrustedReferences = true }, counting);

        (_, IImageSource? source) = await gate.Reference.GateAsync(0, referrer, Backing(dir, "base.img"), keepOpen: true, CancellationToken.None, reuse: true);

        Assert.NotNull(source);
        Assert.Equal(1, counting.CanOpenCalls);
    }

    [QemuImgFact]
    public async Task A_recorded_local_backing_file_in_the_host_posture_is_opened_without_awaiting()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        using var gate = new Gate(TrustPolicy.Default, FileImageSourceProvider.Instance);

        ValueTask<(ReferenceDecision Decision, IImageSource? Source)> gating = gate.Reference.GateAsync(0, FormatSource.Recorded, Backing(dir, "base.qcow2"), keepOpen: true, CancellationToken.None, reuse: true);

        Assert.True(gating.IsCompletedSuccessfully);
        (ReferenceDecision decision, IImageSource? source) = await gating;
        Assert.NotNull(source);
        Assert.Equal((ReferenceOutcome.Opened, TrustBasis.AuthenticFormat), (decision.Outcome, decision.Basis));
        Assert.Empty(gate.Findings.ToImmutable());
    }

    [Fact]
    public async Task A_name_no_provider_serves_is_not_followed_and_ends_the_walk_as_refused()
    {
        using var gate = new Gate(TrustPolicy.QemuCompatible, FileImageSourceProvider.Instance);
        ImageReference url = QemuPaths.ToReference("/images/top.qcow2", "http://example.test/base.qcow2", ReferenceRole.BackingFile, "qcow2");

        (ReferenceDecision decision, IImageSource? source) = await gate.Reference.GateAsync(0, FormatSource.Declared, url, keepOpen: true, CancellationToken.None, reuse: true);

        Assert.Null(source);
        Assert.Equal(ReferenceOutcome.NotFollowed, decision.Outcome);
        Assert.Equal(FindingCodes.ProtocolReference, Assert.Single(gate.Findings.ToImmutable()).Code);
        Assert.Equal(ChainEnding.Refused, ReferenceGate.EndingFor(decision.Outcome));
        Assert.Equal(ChainEnding.Missing, ReferenceGate.EndingFor(ReferenceOutcome.Missing));
    }

    private static ImageReference Backing(ScratchDirectory dir, string name) =>
        QemuPaths.ToReference(dir["top.qcow2"], name, ReferenceRole.BackingFile, "raw");

    private static TrustPolicy Pinned(string location, string digest) => new()
    {
        Posture = TrustPosture.UntrustedImage,
        PinnedImages = [ImagePin.Create(location, digest)],
    };

    /// <summary>A gate over one provider, with the findings and sources of its walk.</summary>
    private sealed class Gate : IDisposable
    {
        private readonly WalkSources _sources = new();

        public Gate(TrustPolicy policy, IImageSourceProvider provider) =>
            Reference = new ReferenceGate(policy, [provider], Findings, _sources, NullLogger.Instance);

        public PooledList<ChainFinding> Findings { get; } = new();

        public ReferenceGate Reference { get; }

        public void Dispose()
        {
            _sources.Dispose();
            Findings.Dispose();
        }
    }

    /// <summary>The file provider, counting how often the gate asked whether it serves a name.</summary>
    private sealed class CountingProvider : IImageSourceProvider
    {
        public int CanOpenCalls { get; private set; }

        public bool CanOpen(ImageReference reference)
        {
            CanOpenCalls++;
            return FileImageSourceProvider.Instance.CanOpen(reference);
        }

        public ValueTask<IImageSource> OpenAsync(string name, CancellationToken cancellationToken = default) =>
            FileImageSourceProvider.Instance.OpenAsync(name, cancellationToken);
    }
}
