using System;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary><c>backing-chain domain</c>: exit codes, the JSON shape and escaped human output, over documents valid against libvirt's schema.</summary>
public sealed class CliDomainTests
{
    [LibvirtSchemaFact]
    public void Domain_exits_0_for_a_clean_chain_and_1_for_drift()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");
        string full = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["top.qcow2"]}'/>"
            + $"<backingStore type='file' index='1'><format type='raw'/><source file='{dir["base.raw"]}'/><backingStore/></backingStore><target dev='vda' bus='virtio'/></disk>";
        string cut = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["top.qcow2"]}'/><backingStore/><target dev='vdb' bus='virtio'/></disk>";
        string clean = WriteDomain(dir, "clean.xml", full);
        string drifting = WriteDomain(dir, "drift.xml", full + cut);

        (int cleanExit, string cleanJson, _) = CliRunner.Run(dir.Path, "domain", "--output=json", clean);
        (int driftExit, string driftJson, _) = CliRunner.Run(dir.Path, "domain", "--output", "json", drifting);
        (int usageExit, _, _) = CliRunner.Run(dir.Path, "domain");

        Assert.Equal(0, cleanExit);
        JsonNode cleanDoc = JsonNode.Parse(cleanJson)!;
        Assert.Equal("safe", (string)cleanDoc["verdict"]!);
        JsonNode vda = cleanDoc["disks"]![0]!;
        Assert.Equal("terminated", (string)vda["ending"]!);
        Assert.Equal([dir["top.qcow2"], dir["base.raw"]], vda["layers"]!.AsArray().Select(l => (string)l!["source"]!));
        Assert.Equal(1, (int)vda["layers"]![1]!["index"]!);
        Assert.Empty(vda["drift"]!.AsArray());

        Assert.Equal(1, driftExit);
        JsonNode driftDoc = JsonNode.Parse(driftJson)!;
        Assert.Equal("unsafe", (string)driftDoc["verdict"]!);
        JsonNode drift = Assert.Single(driftDoc["disks"]![1]!["drift"]!.AsArray())!;
        Assert.Equal("missing-layer", (string)drift["kind"]!);
        Assert.Equal((string)QemuImg.Info(dir.Path, dir["top.qcow2"])["backing-filename"]!, (string)drift["actual"]!);

        Assert.Equal(2, usageExit);
    }

    [LibvirtSchemaFact]
    public void Domain_walks_what_libvirt_probes_under_the_posture_given()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");
        string open = WriteDomain(dir, "open.xml", $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["top.qcow2"]}'/><target dev='vda' bus='virtio'/></disk>");

        (int hostExit, string human, _) = CliRunner.Run(dir.Path, "domain", open);
        (int untrustedExit, _, _) = CliRunner.Run(dir.Path, "domain", "--untrusted", open);
        (int rootedExit, _, _) = CliRunner.Run(dir.Path, "domain", "--untrusted", "--trust-root", dir.Path, open);

        // The overlay records its backing format, so libvirt's walk is safe for the host; an untrusted image may name only trusted files.
        Assert.Equal(0, hostExit);
        Assert.Contains("libvirt reads [0]", human, StringComparison.Ordinal);
        Assert.Equal(1, untrustedExit);
        Assert.Equal(0, rootedExit);
    }

    [LibvirtSchemaFact]
    public void Domain_human_output_escapes_control_characters_in_names()
    {
        using var dir = new ScratchDirectory();
        string forged = WriteDomain(dir, "forged.xml", $"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{dir.Path}/x&#155;31m&#8232;verdict: safe'/><backingStore/><target dev='vda' bus='virtio'/></disk>");

        (int exit, string output, _) = CliRunner.Run(dir.Path, "domain", forged);

        Assert.Equal(1, exit);
        // A terminal's CSI and a line separator (libvirt's schema admits neither newline nor escape in a path) come out as text.
        Assert.Contains("x\\x9b31m\\u2028verdict: safe", output, StringComparison.Ordinal);
        Assert.DoesNotContain('\u009b', output);
        Assert.DoesNotContain('\u2028', output);
    }

    /// <summary>A domain document with <paramref name="disks"/>, checked against libvirt's schema before it is used.</summary>
    private static string WriteDomain(ScratchDirectory dir, string name, string disks)
    {
        string file = dir[name];
        File.WriteAllText(file, $"<domain type='kvm'>\n  <name>guest</name>\n  <memory unit='KiB'>65536</memory>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  <devices>\n{disks}\n  </devices>\n</domain>\n");
        (int exit, string output) = VirtXmlValidate.ValidateDomainFile(file);
        Assert.True(exit == 0, output);
        return file;
    }
}
