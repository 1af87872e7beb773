using System;
using System.IO;
using BackingChain.Chain;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;

namespace BackingChain.Tests.Trust;

public sealed class TrustPolicyTests
{
    private static bool IsTrusted(TrustPolicy policy, string path) =>
        new TrustLocations(policy).Judge(new ImageReference(path, ReferenceRole.BackingFile, null, QemuPaths.Classify(path), path)).Trusted;

    [Fact]
    public void Roots_are_compared_after_resolving_links_and_by_whole_components()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["images"]);
        Directory.CreateDirectory(dir["images-evil"]);
        File.WriteAllText(dir["images/a.img"], "");
        File.WriteAllText(dir["images-evil/b.img"], "");
        Directory.CreateSymbolicLink(dir["alias"], dir["images"]);
        File.CreateSymbolicLink(dir["images/escape.img"], dir["images-evil/b.img"]);
        var policy = new TrustPolicy { TrustedRoots = [dir["alias"]] };

        Assert.True(IsTrusted(policy, dir["images/a.img"]));
        Assert.True(IsTrusted(policy, dir["alias/a.img"]));
        Assert.False(IsTrusted(policy, dir["images-evil/b.img"]));
        Assert.False(IsTrusted(policy, dir["images/../images-evil/b.img"]));
        Assert.False(IsTrusted(policy, dir["images/escape.img"]));
        Assert.False(IsTrusted(TrustPolicy.Default, dir["images/a.img"]));
    }

    [Fact]
    public void A_missing_file_inside_a_root_is_inside_so_that_its_absence_can_be_told()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["images"]);
        var policy = new TrustPolicy { TrustedRoots = [dir["images"]] };

        Assert.True(IsTrusted(policy, dir["images/missing.img"]));
        Assert.True(IsTrusted(policy, dir["images/gone/deeper/missing.img"]));
        Assert.False(IsTrusted(policy, dir["images/gone/../../missing.img"]));
        Assert.False(IsTrusted(policy, dir["missing.img"]));
    }

    [Fact]
    public void Roots_are_canonicalised_when_a_walk_needs_them_not_when_the_policy_is_built()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["first"]);
        Directory.CreateDirectory(dir["second"]);
        File.WriteAllText(dir["second/a.img"], "");
        Directory.CreateSymbolicLink(dir["store"], dir["first"]);
        var policy = new TrustPolicy { TrustedRoots = [dir["store"]] };

        // The administrator repoints the store after the policy was built: the next walk follows the new target.
        Directory.Delete(dir["store"]);
        Directory.CreateSymbolicLink(dir["store"], dir["second"]);

        Assert.True(IsTrusted(policy, dir["second/a.img"]));
    }

    [Fact]
    public void A_root_that_does_not_exist_or_is_relative_is_an_error_naming_it()
    {
        using var dir = new ScratchDirectory();

        ArgumentException missing = Assert.Throws<ArgumentException>(() => new TrustPolicy { TrustedRoots = [dir["not-yet"]] });
        Assert.Contains(dir["not-yet"], missing.Message, StringComparison.Ordinal);
        ArgumentException relative = Assert.Throws<ArgumentException>(() => new TrustPolicy { TrustedRoots = ["images"] });
        Assert.Contains("'images'", relative.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Digests_are_compared_without_regard_to_case_or_spaces_and_must_be_sha256()
    {
        var policy = new TrustPolicy { TrustedDigests = [" ABCDEF" + new string('0', 58) + " "] };

        Assert.True(policy.PinsDigests);
        Assert.True(policy.IsDigestPinned("abcdef" + new string('0', 58)));
        Assert.False(policy.IsDigestPinned(new string('1', 64)));
        Assert.Throws<ArgumentException>(() => new TrustPolicy { TrustedDigests = ["abc"] });
        Assert.Throws<ArgumentException>(() => new TrustPolicy { TrustedDigests = [new string('g', 64)] });
    }

    [Fact]
    public void Protocol_references_are_never_trusted_by_roots()
    {
        var policy = new TrustPolicy { TrustedRoots = ["/"] };
        var reference = new ImageReference("nbd://h/x", ReferenceRole.BackingFile, "raw", ReferenceKind.Protocol, "nbd://h/x");

        Assert.False(new TrustLocations(policy).Judge(reference).Trusted);
    }
}
