using System;
using System.IO;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Trust;

/// <summary>A qcow2 image marked corrupt (incompatible feature bit 1) is refused from someone else and reported to the host.</summary>
public sealed class CorruptBitTests
{
    /// <summary>Sets the corrupt bit: the low byte of the big-endian incompatible-features field at offset 72.</summary>
    private static void MarkCorrupt(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        bytes[79] |= 0b10;
        File.WriteAllBytes(path, bytes);
    }

    [QemuImgFact]
    public async Task A_corrupt_image_is_unsafe_structure_when_untrusted_and_a_finding_for_the_host_at_any_depth()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "alone.qcow2", "1M");
        MarkCorrupt(dir["base.qcow2"]);
        MarkCorrupt(dir["alone.qcow2"]);

        // The oracle: qemu-img reports the bit and refuses to open the image for writing.
        Assert.True((bool)QemuImg.Info(dir.Path, "alone.qcow2")["format-specific"]!["data"]!["corrupt"]!);
        ProcessResult write = ProcessRunner.Run("qemu-img", ["snapshot", "-c", "s", "alone.qcow2"], dir.Path);
        Assert.NotEqual(0, write.ExitCode);
        Assert.Contains("corrupt", write.StandardError, StringComparison.OrdinalIgnoreCase);

        var untrusted = new ImageChainResolver(new ImageChainResolverOptions { Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] } });
        var host = new ImageChainResolver(new ImageChainResolverOptions { Policy = new TrustPolicy { Posture = TrustPosture.Host } });
        foreach ((string image, int layer) in new[] { ("alone.qcow2", 0), ("top.qcow2", 1) })
        {
            TrustReport refused = await untrusted.CheckAsync(dir[image], ImageFormat.Qcow2);
            Assert.False(refused.IsSafe, image);
            Assert.Equal(TrustReason.UnsafeStructure, refused.Reason);
            Assert.Equal(TrustReason.UnsafeStructure, refused.Layers[layer].Reason);
            Assert.Contains(refused.Findings, f => f.Code == FindingCodes.MalformedHeader && f.LayerIndex == layer && f.Message.Contains("marked corrupt", StringComparison.Ordinal));

            TrustReport accepted = await host.CheckAsync(dir[image], ImageFormat.Qcow2);
            Assert.True(accepted.IsSafe, image);
            ChainFinding finding = Assert.Single(accepted.Findings);
            Assert.Equal((FindingCodes.MalformedHeader, layer), (finding.Code, finding.LayerIndex));
            Assert.Contains("marked corrupt", finding.Message, StringComparison.Ordinal);
        }

        // An upload marked corrupt is refused by the gate (standard input is an upload).
        (int exit, string json, string error) = CliRunner.RunWithInput(dir.Path, dir["alone.qcow2"], "check", "-f", "qcow2", "--output", "json", "-");
        Assert.True(exit == 1, json + error);
        Assert.Equal("unsafe-structure", (string?)JsonNode.Parse(json)!["reason"]);

        // The clean chain has none of it.
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "clean.qcow2", "1M");
        Assert.Empty((await untrusted.CheckAsync(dir["clean.qcow2"], ImageFormat.Qcow2)).Findings);
    }
}
