using System;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;
using static BackingChain.Tests.Streaming.UploadTestHelpers;

namespace BackingChain.Tests.Trust;

/// <summary>
/// The ways the verdict used to disagree with itself or leak what it must not, each kept as a regression test:
/// one policy per walk and verdict, polyglots refused by every input shape, missing told apart from refused only
/// where the policy allows, and pinned digests that open nothing they cannot decide.
/// </summary>
public sealed class OneJudgeRegressionTests
{
    private static TrustReport Check(string path, ImageFormat? format, TrustPolicy policy, SpyFileProvider? spy = null) =>
        new ImageChainResolver(new ImageChainResolverOptions { Policy = policy, SourceProviders = [spy ?? new SpyFileProvider()] }).Check(path, format);

    [Fact]
    public void The_verdict_can_only_be_taken_under_the_policy_the_walk_used()
    {
        // A second policy at evaluation time once let a chain walked with the default policy be called safe by a
        // stricter one; no public method of the verdict takes a policy any more.
        foreach (Type type in new[] { typeof(TrustEvaluator), typeof(LibvirtDiskXml), typeof(TrustReport) })
        {
            foreach (MethodInfo method in type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance))
            {
                Assert.DoesNotContain(method.GetParameters(), p => p.ParameterType == typeof(TrustPolicy));
            }
        }
    }

    [QemuImgFact]
    public void Untrusted_posture_refuses_a_declared_image_naming_a_host_file_and_never_opens_it()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", "top.qcow2", "1M");
        var spy = new SpyFileProvider();

        TrustReport host = Check(dir["top.qcow2"], ImageFormat.Qcow2, new TrustPolicy { TrustedRoots = [dir.Path] });
        TrustReport untrusted = Check(dir["top.qcow2"], ImageFormat.Qcow2, new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] }, spy);

        // The host posture takes a declared format as the administrator's word (libvirt's rule)...
        Assert.True(host.IsSafe, JudgeTableTests.Describe(host));

        // ...the untrusted-image posture does not, and opens nothing outside the root.
        Assert.False(untrusted.IsSafe);
        Assert.Equal(TrustReason.ReferenceNotTrusted, untrusted.Reason);
        Assert.Empty(spy.Opened);
        Assert.False(LibvirtDiskXml.CanWrite(untrusted, out string? reason));
        Assert.Contains("ReferenceNotTrusted", reason, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public async Task A_probed_qcow2_carrying_a_fixed_vhd_footer_is_ambiguous_for_every_input_shape()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "-o", "subformat=fixed", "fixed.vhd", "1M");
        byte[] footer = File.ReadAllBytes(dir["fixed.vhd"])[^512..];
        using (FileStream image = File.Open(dir["image.qcow2"], FileMode.Append))
        {
            image.Write(footer);
        }

        TrustReport probed = Check(dir["image.qcow2"], null, TrustPolicy.Default);
        TrustReport declared = Check(dir["image.qcow2"], ImageFormat.Qcow2, TrustPolicy.Default);
        UploadInspection upload = await InspectAsync(File.ReadAllBytes(dir["image.qcow2"]), 4096, new UploadInspectionOptions { Name = dir["image.qcow2"] });

        Assert.Equal(ImageFormat.Qcow2, probed.Layers[0].Format);
        Assert.False(probed.IsSafe);
        Assert.Equal(TrustReason.AmbiguousContent, probed.Reason);
        Assert.Contains(probed.Findings, f => f.Code == FindingCodes.FormatMismatch && f.Message.Contains("VHD footer", StringComparison.Ordinal));
        Assert.True(declared.IsSafe, JudgeTableTests.Describe(declared));
        Assert.Equal(TrustReason.AmbiguousContent, upload.Reason);
    }

    [QemuImgFact]
    public async Task A_probed_qcow2_carrying_an_iso9660_volume_descriptor_in_its_header_cluster_is_ambiguous()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        byte[] bytes = File.ReadAllBytes(dir["image.qcow2"]);

        // A primary volume descriptor (type 1, "CD001", version 1) at sector 16 of 2048 bytes: inside the first
        // 64 KiB cluster, which qemu never reads past the header and its extensions.
        byte[] descriptor = [1, (byte)'C', (byte)'D', (byte)'0', (byte)'0', (byte)'1', 1];
        descriptor.CopyTo(bytes, 32768);
        File.WriteAllBytes(dir["image.qcow2"], bytes);
        Assert.Equal("qcow2", (string)QemuImg.Info(dir.Path, "image.qcow2")["format"]!);

        TrustReport probed = Check(dir["image.qcow2"], null, TrustPolicy.Default);
        UploadInspection upload = await InspectAsync(bytes, 7, new UploadInspectionOptions());

        Assert.Equal(TrustReason.AmbiguousContent, probed.Reason);
        Assert.Contains(probed.Layers[0].Layer.Detection!.Signatures, s => s.Description.Contains("ISO 9660", StringComparison.Ordinal));
        Assert.Equal(TrustReason.AmbiguousContent, upload.Reason);

        // Alone, an ISO 9660 image is raw to qemu and nothing else: not a polyglot.
        byte[] iso = new byte[64 * 1024];
        descriptor.CopyTo(iso, 32768);
        File.WriteAllBytes(dir["disc.iso"], iso);
        TrustReport disc = Check(dir["disc.iso"], null, TrustPolicy.Default);
        Assert.True(disc.IsSafe, JudgeTableTests.Describe(disc));
        Assert.Equal(TrustReason.ProbedRaw, disc.Reason);
    }

    [QemuImgFact]
    public void Inside_a_root_a_deleted_base_reads_as_missing_and_outside_it_existence_is_never_told()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["store"]);
        Directory.CreateDirectory(dir["elsewhere"]);
        File.WriteAllBytes(dir["elsewhere/exists.raw"], new byte[512]);
        QemuImg.Run(dir["store"], "create", "-q", "-f", "qcow2", "-u", "-b", dir["store/deleted.raw"], "-F", "raw", "top-deleted.qcow2", "1M");
        QemuImg.Run(dir["store"], "create", "-q", "-f", "qcow2", "-u", "-b", dir["elsewhere/exists.raw"], "-F", "raw", "top-exists.qcow2", "1M");
        QemuImg.Run(dir["store"], "create", "-q", "-f", "qcow2", "-u", "-b", dir["elsewhere/absent.raw"], "-F", "raw", "top-absent.qcow2", "1M");
        var policy = new TrustPolicy { TrustedRoots = [dir["store"]] };

        // The declared top's backing is the administrator's (followed, then found missing); the probed tops' are not.
        TrustReport deleted = Check(dir["store/top-deleted.qcow2"], ImageFormat.Qcow2, policy);
        TrustReport exists = Check(dir["store/top-exists.qcow2"], null, policy);
        TrustReport absent = Check(dir["store/top-absent.qcow2"], null, policy);

        Assert.Equal(ChainEnding.Missing, deleted.Chain.Ending);
        Assert.Equal(TrustReason.ReferenceMissing, deleted.Reason);
        Assert.Contains(deleted.Findings, f => f.Message.EndsWith("No such file or directory", StringComparison.Ordinal));

        Assert.Equal(ChainEnding.Refused, exists.Chain.Ending);
        Assert.Equal(ChainEnding.Refused, absent.Chain.Ending);
        string Refusal(TrustReport report, string name) =>
            report.Findings.Single(f => f.Code == FindingCodes.UnreachableImage).Message.Replace(name, "NAME", StringComparison.Ordinal);
        Assert.Equal(Refusal(exists, dir["elsewhere/exists.raw"]), Refusal(absent, dir["elsewhere/absent.raw"]));
        Assert.Equal(ReferenceOutcome.Refused, exists.Chain.Decisions.Single().Outcome);
        Assert.Equal(ReferenceOutcome.Refused, absent.Chain.Decisions.Single().Outcome);
    }

    [QemuImgFact]
    public void Pinned_digests_hash_only_regular_files_within_the_bound_and_refuse_the_rest_alike()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["store"]);
        Directory.CreateDirectory(dir["elsewhere"]);
        byte[] base512 = new byte[512];
        base512[0] = 0x42;
        File.WriteAllBytes(dir["elsewhere/pinned.raw"], base512);
        File.WriteAllBytes(dir["elsewhere/large.raw"], new byte[64 * 1024]);
        File.WriteAllBytes(dir["elsewhere/other.raw"], new byte[512]);
        string pin = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(base512));
        string largePin = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(new byte[64 * 1024]));
        foreach ((string top, string named) in new[]
        {
            ("pinned", dir["elsewhere/pinned.raw"]), ("large", dir["elsewhere/large.raw"]), ("device", "/dev/zero"),
            ("absent", dir["elsewhere/absent.raw"]), ("mismatch", dir["elsewhere/other.raw"]),
        })
        {
            QemuImg.Run(dir["store"], "create", "-q", "-f", "qcow2", "-u", "-b", named, "-F", "raw", $"{top}.qcow2", "1M");
        }

        // Each pin names the file its image names: only the bound, the type, the absence or the content refuses them.
        var policy = new TrustPolicy
        {
            TrustedRoots = [dir["store"]],
            PinnedImages =
            [
                ImagePin.Create(dir["elsewhere/pinned.raw"], pin), ImagePin.Create(dir["elsewhere/large.raw"], largePin),
                ImagePin.Create("/dev/zero", largePin), ImagePin.Create(dir["elsewhere/absent.raw"], pin),
                ImagePin.Create(dir["elsewhere/other.raw"], pin),
            ],
            MaxDigestFileLength = 4096,
        };
        var spy = new SpyFileProvider();
        TrustReport pinned = Check(dir["store/pinned.qcow2"], null, policy, spy);
        TrustReport large = Check(dir["store/large.qcow2"], null, policy);
        TrustReport device = Check(dir["store/device.qcow2"], null, policy);
        TrustReport absent = Check(dir["store/absent.qcow2"], null, policy);
        TrustReport mismatch = Check(dir["store/mismatch.qcow2"], null, policy);

        Assert.True(pinned.IsSafe, JudgeTableTests.Describe(pinned));
        ReferenceDecision byDigest = pinned.Chain.Decisions.Single();
        Assert.Equal((ReferenceOutcome.Opened, TrustBasis.Digest, pin), (byDigest.Outcome, byDigest.Basis, byDigest.Sha256));

        // Its digest is pinned too, but it is larger than the bound: refused exactly as a device, an absent file and a
        // file whose digest is not pinned.
        foreach (TrustReport refused in new[] { large, device, absent, mismatch })
        {
            Assert.False(refused.IsSafe);
            Assert.Equal(TrustReason.ProbedWithUntrustedReferences, refused.Reason);
            Assert.Equal((ReferenceOutcome.Refused, TrustBasis.None, (string?)null), (refused.Chain.Decisions.Single().Outcome, refused.Chain.Decisions.Single().Basis, refused.Chain.Decisions.Single().Sha256));
            Assert.EndsWith("not allowed by the trust policy", refused.Findings.Single(f => f.Code == FindingCodes.UnreachableImage).Message, StringComparison.Ordinal);
        }

        // Without pins, a file the location rule refuses is not even opened.
        var noPins = new SpyFileProvider();
        Check(dir["store/large.qcow2"], null, new TrustPolicy { TrustedRoots = [dir["store"]] }, noPins);
        Assert.DoesNotContain(dir["elsewhere/large.raw"], noPins.Opened);

        // Nor with pins for other names: a pin vouches for the content at its own location, and a name a header chose
        // is not worth opening because some other file is pinned, even when the content there would match.
        var otherPins = new SpyFileProvider();
        var elsewhere = new TrustPolicy { TrustedRoots = [dir["store"]], PinnedImages = [ImagePin.Create(dir["elsewhere/copy.raw"], pin)] };
        TrustReport unpinned = Check(dir["store/pinned.qcow2"], null, elsewhere, otherPins);
        Assert.False(unpinned.IsSafe);
        Assert.Equal((ReferenceOutcome.Refused, TrustBasis.None), (unpinned.Chain.Decisions.Single().Outcome, unpinned.Chain.Decisions.Single().Basis));
        Assert.Empty(otherPins.Opened);
    }

    [QemuImgFact]
    public async Task Data_file_names_are_literal_file_names_in_every_input_shape()
    {
        // qemu 7.2.13+ never parses a data-file name for protocols: "nbd:x" is a file called "nbd:x".
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=nbdxx", "image.qcow2", "1M");
        byte[] bytes = File.ReadAllBytes(dir["image.qcow2"]);
        int at = bytes.AsSpan(0, 4096).IndexOf("nbdxx"u8);
        "nbd:x"u8.CopyTo(bytes.AsSpan(at));
        File.WriteAllBytes(dir["image.qcow2"], bytes);
        File.Move(dir["nbdxx"], dir["nbd:x"]);
        var policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] };

        TrustReport file = Check(dir["image.qcow2"], ImageFormat.Qcow2, policy);
        UploadInspection upload = await InspectAsync(bytes, 4096, new UploadInspectionOptions { Policy = policy, DeclaredFormat = ImageFormat.Qcow2, Name = dir["image.qcow2"] });

        Assert.Equal(ReferenceKind.RelativePath, file.Layers[0].Layer.References.Single().Kind);
        Assert.Equal(ReferenceKind.RelativePath, upload.References.Single().Kind);
        Assert.True(file.IsSafe, JudgeTableTests.Describe(file));
        Assert.True(upload.IsAccepted, JudgeTableTests.Describe(upload.Report));
    }
}
