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
    public void A_relative_root_is_an_error_naming_it_and_a_missing_root_is_judged_at_use()
    {
        using var dir = new ScratchDirectory();

        ArgumentException relative = Assert.Throws<ArgumentException>(() => new TrustPolicy { TrustedRoots = ["images"] });
        Assert.Contains("'images'", relative.Message, StringComparison.Ordinal);

        // Validation at use, not in the setter: a policy may be built before its store is made (issue 19); a root
        // missing when a walk needs it trusts nothing, and one made later trusts its files at the next walk.
        var policy = new TrustPolicy { TrustedRoots = [dir["not-yet"]] };
        Assert.False(IsTrusted(policy, dir["not-yet/a.img"]));
        Directory.CreateDirectory(dir["not-yet"]);
        Assert.True(IsTrusted(policy, dir["not-yet/a.img"]));
    }

    [Fact]
    public void A_pin_is_a_digest_and_a_location_the_host_chose()
    {
        ImagePin pin = ImagePin.Parse(" ABCDEF" + new string('0', 58) + "=/srv/pins//base=1.raw ");

        Assert.Equal("abcdef" + new string('0', 58), pin.Sha256);
        Assert.Equal("/srv/pins//base=1.raw", pin.Location);
        Assert.Equal(pin, ImagePin.Create("/srv/pins/./base=1.raw", "ABCDEF" + new string('0', 58)));
        Assert.Equal("abcdef" + new string('0', 58) + "=/srv/pins//base=1.raw", pin.ToString());

        // Only spellings that name the same file whatever the disk holds are the same location; '..' is not collapsed.
        var policy = new TrustPolicy { PinnedImages = [pin] };
        Assert.Single(policy.PinsAt("/srv/pins/base=1.raw"));
        Assert.Empty(policy.PinsAt("/srv/pins/x/../base=1.raw"));
        Assert.Empty(policy.PinsAt("/srv/pins/base=1.raw.bak"));

        ImagePin url = ImagePin.Parse(new string('1', 64) + "=HTTP://Images.Example:80/base/%7Eb.raw");
        Assert.Equal("http://images.example/base/~b.raw", url.Key);

        Assert.False(ImagePin.TryParse(new string('a', 64), out _, out string? bare));
        Assert.Contains("SHA256=LOCATION", bare, StringComparison.Ordinal);
        Assert.False(ImagePin.TryParse(new string('a', 64) + "=relative/base.raw", out _, out string? relative));
        Assert.Contains("absolute", relative, StringComparison.Ordinal);
        Assert.False(ImagePin.TryParse("abc=/srv/base.raw", out _, out _));
        Assert.False(ImagePin.TryParse(new string('g', 64) + "=/srv/base.raw", out _, out string? notHex));
        Assert.Contains("SHA-256", notHex, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ImagePin.Create("/srv/base.raw", "abc"));
        Assert.Throws<ArgumentException>(() => ImagePin.Create("http://user@h/base.raw", new string('a', 64)));
    }

    [Fact]
    public void Protocol_references_are_never_trusted_by_roots()
    {
        var policy = new TrustPolicy { TrustedRoots = ["/"] };
        var reference = new ImageReference("nbd://h/x", ReferenceRole.BackingFile, "raw", ReferenceKind.Protocol, "nbd://h/x");

        Assert.False(new TrustLocations(policy).Judge(reference).Trusted);
    }
}
