using System;
using System.Buffers.Binary;
using System.IO;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;
using static BackingChain.Tests.Streaming.UploadTestHelpers;

namespace BackingChain.Tests.Trust;

/// <summary>
/// Headers qemu 7.2 opens but an image from someone else must not have: the untrusted-image posture refuses them,
/// with a finding naming the check, in a file chain and in an upload alike; the host posture keeps qemu's leniency.
/// </summary>
public sealed class UnsafeStructureTests
{
    private const int L1TableOffsetField = 40;
    private const int RefcountTableOffsetField = 48;
    private const int IncompatibleFeaturesField = 72;

    public static TheoryData<string, string> Cases() => new()
    {
        { "l1-in-header", "L1 table" },
        { "refcount-past-end", "refcount table" },
        { "data-file-name-without-bit", "feature bit is not set" },
    };

    private static byte[] Make(ScratchDirectory dir, string kind)
    {
        if (kind == "data-file-name-without-bit")
        {
            QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=data.raw", "image.qcow2", "1M");
            byte[] withData = File.ReadAllBytes(dir["image.qcow2"]);
            ulong incompatible = BinaryPrimitives.ReadUInt64BigEndian(withData.AsSpan(IncompatibleFeaturesField));
            BinaryPrimitives.WriteUInt64BigEndian(withData.AsSpan(IncompatibleFeaturesField), incompatible & ~4UL);
            return withData;
        }

        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        byte[] bytes = File.ReadAllBytes(dir["image.qcow2"]);
        if (kind == "l1-in-header")
        {
            // Cluster-aligned, so qemu's table validation passes: the guest's first L1 write would land on the header.
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(L1TableOffsetField), 0);
        }
        else
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(RefcountTableOffsetField), 1UL << 30);
        }

        return bytes;
    }

    [QemuImgTheory]
    [MemberData(nameof(Cases))]
    public async Task The_untrusted_posture_refuses_it_and_names_the_check(string kind, string named)
    {
        using var dir = new ScratchDirectory();
        byte[] bytes = Make(dir, kind);
        File.WriteAllBytes(dir["image.qcow2"], bytes);
        if (kind == "data-file-name-without-bit")
        {
            File.WriteAllBytes(dir["data.raw"], new byte[1024 * 1024]);
        }

        // qemu opens it: this is a rule of ours, not a malformed header.
        Assert.Equal("qcow2", (string)QemuImg.Info(dir.Path, "image.qcow2", format: "qcow2")["format"]!);

        var untrusted = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] };
        TrustReport host = new ImageChainResolver().Check(dir["image.qcow2"], ImageFormat.Qcow2);
        TrustReport file = new ImageChainResolver(new ImageChainResolverOptions { Policy = untrusted }).Check(dir["image.qcow2"], ImageFormat.Qcow2);
        UploadInspection upload = await InspectAsync(bytes, 4096, new UploadInspectionOptions { Policy = untrusted, DeclaredFormat = ImageFormat.Qcow2, Name = dir["image.qcow2"] });

        Assert.True(host.IsSafe, JudgeTableTests.Describe(host));
        Assert.Equal(TrustReason.UnsafeStructure, file.Reason);
        Assert.Contains(file.Findings, f => f.Code == FindingCodes.MalformedHeader && f.Message.Contains(named, StringComparison.Ordinal));
        Assert.Equal(TrustReason.UnsafeStructure, upload.Reason);
    }

    [QemuImgFact]
    public void Images_qemu_img_makes_have_none()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "small.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=data.raw", "data.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=pw", "-o", "encrypt.format=luks,encrypt.key-secret=s0", "luks.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "big.qcow2", "1T");
        QemuImg.Run(dir.Path, "snapshot", "-c", "s1", "big.qcow2");
        var untrusted = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] };

        foreach (string image in new[] { "small.qcow2", "data.qcow2", "luks.qcow2", "big.qcow2" })
        {
            TrustReport report = new ImageChainResolver(new ImageChainResolverOptions { Policy = untrusted }).Check(dir[image], ImageFormat.Qcow2);
            Assert.True(report.IsSafe, $"{image}: {JudgeTableTests.Describe(report)}");
        }
    }
}
