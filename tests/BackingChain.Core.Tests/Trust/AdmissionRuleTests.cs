using System.IO;
using BackingChain.Chain;
using BackingChain.Trust;

namespace BackingChain.Tests.Trust;

/// <summary>
/// The gate's rule as written once in <c>Trust/</c>: when the files an image names must be trusted, when their
/// location is judged at all, and when a digest may be computed (<see cref="DigestEligibility"/>).
/// </summary>
public sealed class AdmissionRuleTests
{
    [Theory]
    [InlineData(TrustPosture.Host, false, false)]
    [InlineData(TrustPosture.Host, true, true)]
    [InlineData(TrustPosture.UntrustedImage, false, true)]
    [InlineData(TrustPosture.UntrustedImage, true, true)]
    public void Trust_is_required_for_a_probed_format_or_in_the_untrusted_posture(TrustPosture posture, bool probed, bool required) =>
        Assert.Equal(required, TrustJudge.RequiresTrust(posture, probed));

    [Theory]
    // Host posture, the administrator's word (declared or recorded) on a local name in a local image: followed as authentic.
    [InlineData(TrustPosture.Host, FormatSource.Declared, true, true, false, TrustBasis.AuthenticFormat)]
    [InlineData(TrustPosture.Host, FormatSource.Recorded, true, true, false, TrustBasis.AuthenticFormat)]
    // ...not for a probed format, a URL, or a header read from another machine.
    [InlineData(TrustPosture.Host, FormatSource.Probed, true, true, false, TrustBasis.None)]
    [InlineData(TrustPosture.Host, FormatSource.Declared, false, true, false, TrustBasis.None)]
    [InlineData(TrustPosture.Host, FormatSource.Recorded, true, false, false, TrustBasis.None)]
    [InlineData(TrustPosture.Host, FormatSource.Probed, true, true, true, TrustBasis.FollowedUntrusted)]
    // Untrusted posture: nothing is the administrator's word.
    [InlineData(TrustPosture.UntrustedImage, FormatSource.Declared, true, true, false, TrustBasis.None)]
    [InlineData(TrustPosture.UntrustedImage, FormatSource.Declared, true, true, true, TrustBasis.FollowedUntrusted)]
    public void The_gate_admits_by_the_same_rule(TrustPosture posture, FormatSource referrer, bool localReference, bool localReferrer, bool follow, TrustBasis expected)
    {
        var policy = new TrustPolicy { Posture = posture, FollowUntrustedReferences = follow };

        Assert.Equal(expected, TrustJudge.Admit(policy, referrer, trustedByLocation: false, localReference, localReferrer));
        Assert.Equal(TrustBasis.Location, TrustJudge.Admit(policy, referrer, trustedByLocation: true, localReference, localReferrer));
        Assert.Equal(expected != TrustBasis.AuthenticFormat, TrustJudge.LocationMatters(posture, referrer, localReference, localReferrer));
    }

    [Fact]
    public void Only_a_refused_name_spelling_a_pinned_location_may_be_hashed()
    {
        string location = Path.Combine(Path.GetTempPath(), "pins", "base.img");
        var policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, PinnedImages = [ImagePin.Create(location, new string('a', 64))] };
        ImageReference pinned = QemuPaths.ToReference("/top.qcow2", location, ReferenceRole.BackingFile, null);
        ImageReference spelledOtherwise = QemuPaths.ToReference("/top.qcow2", location.Replace("/pins/", "/pins/./", System.StringComparison.Ordinal), ReferenceRole.BackingFile, null);
        ImageReference other = QemuPaths.ToReference("/top.qcow2", Path.Combine(Path.GetTempPath(), "guest", "base.img"), ReferenceRole.BackingFile, null);

        Assert.Single(DigestEligibility.PinsFor(policy, TrustBasis.None, pinned, null));
        Assert.Single(DigestEligibility.PinsFor(policy, TrustBasis.None, spelledOtherwise, null));
        Assert.Empty(DigestEligibility.PinsFor(policy, TrustBasis.None, other, null));

        // A name the rule admitted is opened on that basis, never hashed; a policy without pins hashes nothing.
        Assert.Empty(DigestEligibility.PinsFor(policy, TrustBasis.FollowedUntrusted, pinned, null));
        Assert.Empty(DigestEligibility.PinsFor(policy, TrustBasis.Location, pinned, null));
        Assert.Empty(DigestEligibility.PinsFor(TrustPolicy.Untrusted, TrustBasis.None, pinned, null));
    }

    [Fact]
    public void A_digest_is_computed_only_for_a_regular_file_within_the_bound()
    {
        var policy = new TrustPolicy { MaxDigestFileLength = 1000 };

        Assert.True(DigestEligibility.MayHash(policy, 1000, isDevice: false));
        Assert.False(DigestEligibility.MayHash(policy, 1001, isDevice: false));
        Assert.False(DigestEligibility.MayHash(policy, 10, isDevice: true));
    }
}
