using System.IO;
using BackingChain.Chain;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;

namespace BackingChain.Tests.Trust;

public sealed class TrustPolicyTests
{
    [Fact]
    public void Roots_are_compared_after_resolving_links_and_by_whole_components()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["images"]);
        Directory.CreateDirectory(dir["images-evil"]);
        File.WriteAllText(dir["images/a.img"], "");
        File.WriteAllText(dir["images-evil/b.img"], "");
        Directory.CreateSymbolicLink(dir["alias"], dir["images"]);
        var policy = new TrustPolicy { TrustedRoots = [dir["alias"]] };

        Assert.True(policy.IsPathTrusted(dir["images/a.img"]));
        Assert.True(policy.IsPathTrusted(dir["alias/a.img"]));
        Assert.False(policy.IsPathTrusted(dir["images-evil/b.img"]));
        Assert.False(policy.IsPathTrusted(dir["images/../images-evil/b.img"]));
        Assert.False(policy.IsPathTrusted(dir["images/missing.img"]));
        Assert.False(TrustPolicy.Default.IsPathTrusted(dir["images/a.img"]));
    }

    [Fact]
    public void Digests_are_compared_without_regard_to_case_or_spaces()
    {
        var policy = new TrustPolicy { TrustedDigests = [" ABCDEF" + new string('0', 58) + " "] };

        Assert.True(policy.PinsDigests);
        Assert.True(policy.IsDigestTrusted("abcdef" + new string('0', 58)));
        Assert.False(policy.IsDigestTrusted(new string('1', 64)));
        Assert.False(policy.IsDigestTrusted(null));
    }

    [Fact]
    public void Protocol_references_are_never_trusted_by_roots()
    {
        var policy = new TrustPolicy { TrustedRoots = ["/"] };
        var reference = new ImageReference("nbd://h/x", ReferenceRole.BackingFile, "raw", ReferenceKind.Protocol, "nbd://h/x");

        Assert.False(policy.IsLocationTrusted(reference));
    }
}
