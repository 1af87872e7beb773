using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using BackingChain.Chain;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Trust;

/// <summary>
/// libvirt's rule, outcome by outcome, on chains made by qemu-img: a probed format may be used only if it is raw,
/// or the image names no other file, or every file it names is present and trusted.
/// </summary>
public sealed class TrustEvaluatorTests
{
    private static (ImageChain Chain, TrustReport Report, SpyFileProvider Spy) Check(string path, ImageFormat? format, TrustPolicy policy, int maxDepth = 200)
    {
        var spy = new SpyFileProvider();
        var options = new ImageChainResolverOptions { Policy = policy, SourceProviders = [spy], MaxDepth = maxDepth };
        ImageChain chain = new ImageChainResolver(options).Resolve(path, format);
        return (chain, TrustEvaluator.Evaluate(chain), spy);
    }

    /// <summary>A raw disk whose guest wrote a qcow2 header naming <paramref name="target"/> as its backing file.</summary>
    private static string GuestWrittenHeader(ScratchDirectory dir, string target)
    {
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", target, "-F", "raw", "-o", "size=1M", "guest.img");
        return dir["guest.img"];
    }

    [QemuImgFact]
    public void Guest_written_header_declared_raw_is_safe()
    {
        using var dir = new ScratchDirectory();
        string guest = GuestWrittenHeader(dir, "/etc/passwd");

        (ImageChain chain, TrustReport report, SpyFileProvider spy) = Check(guest, ImageFormat.Raw, TrustPolicy.Default);

        Assert.True(report.IsSafe);
        Assert.Equal(ImageFormat.Raw, Assert.Single(chain.Layers).Format);
        Assert.Equal(TrustReason.FormatDeclared, report.Layers[0].Reason);
        Assert.Empty(spy.Opened);
    }

    [QemuImgFact]
    public void Guest_written_header_probed_is_refused_and_the_named_file_is_never_opened()
    {
        using var dir = new ScratchDirectory();
        string guest = GuestWrittenHeader(dir, "/etc/passwd");

        (ImageChain chain, TrustReport report, SpyFileProvider spy) = Check(guest, null, TrustPolicy.Default);

        Assert.False(report.IsSafe);
        Assert.Equal(ChainEnding.Refused, chain.Ending);
        Assert.Equal(ImageFormat.Qcow2, chain.Layers[0].Format);
        Assert.Equal(FormatSource.Probed, chain.Layers[0].FormatSource);
        Assert.Equal("/etc/passwd", chain.Layers[0].Backing!.StoredName);
        Assert.Equal(TrustDecision.Rejected, report.Layers[0].Decision);
        Assert.Equal(TrustReason.ProbedWithUntrustedReferences, report.Layers[0].Reason);
        Assert.Contains(report.Findings, f => f.Code == FindingCodes.ProbedFormatWithReferences && f.LayerIndex == 0);
        Assert.Contains(report.Findings, f => f.Code == FindingCodes.UnreachableImage);
        Assert.DoesNotContain("/etc/passwd", spy.Opened);
        Assert.Empty(spy.Opened);
    }

    [QemuImgFact]
    public void Guest_written_header_behind_a_qcow_overlay_that_cannot_record_formats_is_refused()
    {
        // qemu-img 7.2 behaviour: victim.qcow (qcow v1, -F silently dropped) -> evil.raw probed as qcow2 -> /etc/passwd.
        using var dir = new ScratchDirectory();
        GuestWrittenHeader(dir, "/etc/passwd");
        File.Move(dir["guest.img"], dir["evil.raw"]);
        // A qcow2 overlay whose backing-format extension was blanked stands in for any overlay without a recorded format.
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b", "evil.raw", "-F", "raw", "-o", "size=1M", "victim.qcow2");
        byte[] bytes = File.ReadAllBytes(dir["victim.qcow2"]);
        Array.Clear(bytes, 0x48, 8);
        File.WriteAllBytes(dir["victim.qcow2"], bytes);

        (ImageChain chain, TrustReport report, SpyFileProvider spy) = Check(dir["victim.qcow2"], ImageFormat.Qcow2, TrustPolicy.Default);

        Assert.False(report.IsSafe);
        Assert.Equal(2, chain.Layers.Length);
        Assert.Equal(FormatSource.Probed, chain.Layers[1].FormatSource);
        Assert.Equal(TrustReason.ProbedWithUntrustedReferences, report.Layers[1].Reason);
        Assert.DoesNotContain("/etc/passwd", spy.Opened);
        // Recording the probed format would bless the forged header: no rebase is suggested for it.
        Assert.Empty(report.Remediation);
    }

    [QemuImgFact]
    public void Qemu_compatible_policy_follows_the_guest_header_like_qemu_img_does()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllText(dir["secret.txt"], "host data");
        string guest = GuestWrittenHeader(dir, dir["secret.txt"]);

        (ImageChain chain, TrustReport report, SpyFileProvider spy) = Check(guest, null, TrustPolicy.QemuCompatible);

        Assert.Equal(2, chain.Layers.Length);
        Assert.Contains(dir["secret.txt"], spy.Opened);
        Assert.False(report.IsSafe); // the probed layer's backing is still not trusted
    }

    [QemuImgFact]
    public void Declared_and_recorded_formats_are_accepted()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");

        (_, TrustReport report, _) = Check(dir["top.qcow2"], ImageFormat.Qcow2, TrustPolicy.Default);

        Assert.True(report.IsSafe);
        Assert.Equal([TrustReason.FormatDeclared, TrustReason.FormatRecorded], report.Layers.Select(l => l.Reason));
        Assert.Empty(report.Remediation);
    }

    [QemuImgFact]
    public void Probed_raw_and_probed_without_references_are_accepted()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "alone.qcow2", "1M");

        Assert.Equal(TrustReason.ProbedRaw, Check(dir["base.raw"], null, TrustPolicy.Default).Report.Layers[0].Reason);
        (_, TrustReport alone, _) = Check(dir["alone.qcow2"], null, TrustPolicy.Default);
        Assert.True(alone.IsSafe);
        Assert.Equal(TrustReason.ProbedWithoutReferences, alone.Layers[0].Reason);
    }

    [QemuImgFact]
    public void Probed_overlay_is_accepted_when_its_backing_lies_under_a_trusted_root()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["trusted"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "trusted/base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "trusted/base.qcow2", "-F", "qcow2", "top.qcow2");
        var policy = new TrustPolicy { TrustedRoots = [dir["trusted"]] };

        (_, TrustReport report, SpyFileProvider spy) = Check(dir["top.qcow2"], null, policy);

        Assert.True(report.IsSafe);
        Assert.Equal(TrustReason.ProbedWithTrustedReferences, report.Layers[0].Reason);
        Assert.Single(spy.Opened);
    }

    [QemuImgFact]
    public void A_symlink_inside_a_trusted_root_pointing_outside_is_not_trusted()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["trusted"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "outside.qcow2", "1M");
        File.CreateSymbolicLink(dir["trusted/base.qcow2"], dir["outside.qcow2"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "trusted/base.qcow2", "-F", "qcow2", "-o", "size=1M", "top.qcow2");
        var policy = new TrustPolicy { TrustedRoots = [dir["trusted"]] };

        (_, TrustReport report, SpyFileProvider spy) = Check(dir["top.qcow2"], null, policy);

        Assert.False(report.IsSafe);
        Assert.Empty(spy.Opened);
    }

    [QemuImgFact]
    public void A_callback_decides_trust_before_anything_is_opened()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        var callback = new RecordingTrust(path => path is not null && path.EndsWith("/base.qcow2", StringComparison.Ordinal));

        (_, TrustReport report, _) = Check(dir["top.qcow2"], null, new TrustPolicy { Callback = callback });

        Assert.True(report.IsSafe);
        Assert.Contains(callback.Asked, r => r.StoredName == "base.qcow2");
    }

    [QemuImgFact]
    public void A_pin_vouches_for_the_content_at_its_own_location_only()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        string digest = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(dir["base.qcow2"])));

        (_, TrustReport pinned, _) = Check(dir["top.qcow2"], null, new TrustPolicy { PinnedImages = [ImagePin.Create(dir["base.qcow2"], digest)] });
        (_, TrustReport wrongPin, _) = Check(dir["top.qcow2"], null, new TrustPolicy { PinnedImages = [ImagePin.Create(dir["base.qcow2"], new string('0', 64))] });
        (_, TrustReport pinElsewhere, _) = Check(dir["top.qcow2"], null, new TrustPolicy { PinnedImages = [ImagePin.Create(dir["copy/base.qcow2"], digest)] });

        Assert.True(pinned.IsSafe);
        Assert.Equal(TrustReason.ProbedWithTrustedReferences, pinned.Layers[0].Reason);
        Assert.False(wrongPin.IsSafe);
        Assert.Single(wrongPin.Chain.Layers);
        Assert.False(pinElsewhere.IsSafe);
        Assert.Single(pinElsewhere.Chain.Layers);
    }

    [QemuImgFact]
    public void An_external_data_file_counts_as_a_reference()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=data.raw", "image.qcow2", "1M");

        (_, TrustReport probed, _) = Check(dir["image.qcow2"], null, TrustPolicy.Default);
        (_, TrustReport declared, _) = Check(dir["image.qcow2"], ImageFormat.Qcow2, TrustPolicy.Default);
        (_, TrustReport trusted, _) = Check(dir["image.qcow2"], null, new TrustPolicy { TrustedRoots = [dir.Path] });
        File.Delete(dir["data.raw"]);
        (_, TrustReport missing, _) = Check(dir["image.qcow2"], ImageFormat.Qcow2, TrustPolicy.Default);

        Assert.False(probed.IsSafe);
        Assert.Contains(probed.Findings, f => f.Code == FindingCodes.ExternalDataFile);
        Assert.Equal(TrustReason.ProbedWithUntrustedReferences, probed.Layers[0].Reason);
        Assert.True(declared.IsSafe);
        Assert.True(trusted.IsSafe);
        Assert.False(missing.IsSafe);
        Assert.Equal(TrustReason.ReferenceMissing, missing.Layers[0].Reason);
        Assert.Equal(ReferenceOutcome.Missing, Assert.Single(missing.Layers[0].References).Outcome);
    }

    [QemuImgFact]
    public void Missing_backing_file()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "does-not-exist.qcow2", "-F", "qcow2", "-o", "size=1M", "missing.qcow2");

        (ImageChain chain, TrustReport report, _) = Check(dir["missing.qcow2"], ImageFormat.Qcow2, TrustPolicy.Default);

        Assert.Equal(ChainEnding.Missing, chain.Ending);
        Assert.False(report.IsSafe);
        Assert.Contains(chain.Findings, f => f.Code == FindingCodes.UnreachableImage);
        Assert.Contains("does-not-exist.qcow2", chain.ErrorMessage, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void Loops_are_caught_by_identity_even_through_other_names()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "loopB.qcow2", "-F", "qcow2", "-o", "size=1M", "loopA.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "loopA.qcow2", "-F", "qcow2", "-o", "size=1M", "loopB.qcow2");
        // C -> ./D -> ./C defeats qemu's string comparison; and a symlink to itself.
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "./loopD.qcow2", "-F", "qcow2", "-o", "size=1M", "loopC.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "./loopC.qcow2", "-F", "qcow2", "-o", "size=1M", "loopD.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "self-link.qcow2", "-F", "qcow2", "-o", "size=1M", "self.qcow2");
        File.CreateSymbolicLink(dir["self-link.qcow2"], "self.qcow2");

        foreach (string top in new[] { "loopA.qcow2", "loopC.qcow2", "self.qcow2" })
        {
            (ImageChain chain, TrustReport report, _) = Check(dir[top], ImageFormat.Qcow2, TrustPolicy.Default);
            Assert.Equal(ChainEnding.Loop, chain.Ending);
            Assert.Contains(chain.Findings, f => f.Code == FindingCodes.BackingLoop);
            Assert.False(report.IsSafe);
        }
    }

    [QemuImgFact]
    public void Depth_is_capped()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "l0.qcow2", "1M");
        for (int i = 1; i < 5; i++)
        {
            QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", $"l{i - 1}.qcow2", "-F", "qcow2", $"l{i}.qcow2");
        }

        (ImageChain capped, TrustReport report, SpyFileProvider spy) = Check(dir["l4.qcow2"], ImageFormat.Qcow2, TrustPolicy.Default, maxDepth: 3);
        (ImageChain whole, _, _) = Check(dir["l4.qcow2"], ImageFormat.Qcow2, TrustPolicy.Default, maxDepth: 5);

        Assert.Equal(ChainEnding.TooDeep, capped.Ending);
        Assert.Equal(3, capped.Layers.Length);
        Assert.Equal(2, spy.Opened.Count);
        Assert.Contains(capped.Findings, f => f.Code == FindingCodes.ChainTooDeep);
        Assert.False(report.IsSafe);
        Assert.Equal(ChainEnding.Complete, whole.Ending);
    }

    [QemuImgTheory]
    [InlineData("nbd://127.0.0.1:10809/exp", ReferenceKind.Protocol)]
    [InlineData("json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"/etc/passwd\"}}", ReferenceKind.Json)]
    [InlineData("file:base.raw", ReferenceKind.Protocol)]
    [InlineData("weird:name.img", ReferenceKind.Protocol)]
    [InlineData("C:\\images\\base.vhd", ReferenceKind.WindowsPath)]
    public void Protocol_json_and_windows_names_are_classified_and_not_followed(string name, ReferenceKind kind)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", name, "-F", "raw", "-o", "size=1M", "proto.qcow2");

        (ImageChain chain, TrustReport report, SpyFileProvider spy) = Check(dir["proto.qcow2"], ImageFormat.Qcow2, TrustPolicy.QemuCompatible);

        ImageReference backing = chain.Layers[0].Backing!;
        Assert.Equal(name, backing.StoredName);
        Assert.Equal(kind, backing.Kind);
        Assert.Equal(name, backing.FullName); // qemu keeps protocol names verbatim
        Assert.Contains(chain.Findings, f => f.Code == FindingCodes.ProtocolReference);
        Assert.Empty(spy.Opened);
        Assert.False(report.IsSafe);
    }

    [QemuImgFact]
    public void Remediation_commands_fix_the_chain_when_run()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.qcow2", "-F", "qcow2", "over.qcow2");
        byte[] bytes = File.ReadAllBytes(dir["over.qcow2"]);
        Array.Clear(bytes, 0x48, 8); // drop the recorded backing format
        File.WriteAllBytes(dir["over.qcow2"], bytes);
        var policy = new TrustPolicy { FollowUntrustedReferences = true };

        (_, TrustReport before, _) = Check("over.qcow2".Insert(0, dir.Path + "/"), ImageFormat.Qcow2, policy);
        string command = Assert.Single(before.Remediation);
        Assert.StartsWith("qemu-img rebase -f qcow2 -F qcow2 -b base.qcow2 -u ", command, StringComparison.Ordinal);

        string[] words = command.Split(' ');
        QemuImg.Run(dir.Path, words[1..]);
        (_, TrustReport after, _) = Check(dir["over.qcow2"], ImageFormat.Qcow2, TrustPolicy.Default);

        Assert.True(after.IsSafe);
        Assert.Empty(after.Remediation);
    }

    private sealed class RecordingTrust(Func<string?, bool> rule) : IImageTrust
    {
        public System.Collections.Concurrent.ConcurrentBag<ImageReference> Asked { get; } = [];

        public bool IsTrusted(ImageReference reference, string? canonicalPath)
        {
            Asked.Add(reference);
            return rule(canonicalPath);
        }
    }
}
