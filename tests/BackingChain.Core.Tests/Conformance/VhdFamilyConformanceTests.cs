using System;
using System.IO;
using System.Text.Json.Nodes;
using BackingChain.Detection;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// vpc, vhdx, vdi, luks and parallels images made by qemu-img 7.2 at test time: our
/// <c>info --output json</c> must equal qemu-img's, with and without <c>-f</c>, and our probe must pick what
/// qemu's did.
/// </summary>
public sealed class VhdFamilyConformanceTests
{
    public static TheoryData<string, string, string, string> Created => new()
    {
        { "vpc", "subformat=dynamic", "1M", "vpc-dyn.vhd" },
        { "vpc", "subformat=dynamic", "10G", "vpc-dyn-10g.vhd" },
        { "vpc", "subformat=fixed", "1M", "vpc-fixed.vhd" },
        { "vpc", "subformat=fixed,force_size=on", "1M", "vpc-fixed-fs.vhd" },
        { "vpc", "subformat=dynamic,force_size=on", "3M", "vpc-dyn-fs.vhd" },
        { "vhdx", "subformat=dynamic", "1M", "vhdx-dyn.vhdx" },
        { "vhdx", "subformat=fixed", "3M", "vhdx-fixed.vhdx" },
        { "vhdx", "block_size=1M", "100M", "vhdx-1m.vhdx" },
        { "vhdx", "block_size=32M", "3G", "vhdx-32m.vhdx" },
        { "vhdx", "block_size=256M", "1G", "vhdx-256m.vhdx" },
        { "vhdx", "log_size=2M", "64M", "vhdx-log2m.vhdx" },
        { "vdi", "static=off", "1M", "vdi-dyn.vdi" },
        { "vdi", "static=on", "3M", "vdi-static.vdi" },
        { "vdi", "static=off", "1000000", "vdi-odd.vdi" },
        { "parallels", "cluster_size=1M", "1M", "par.hds" },
        { "parallels", "cluster_size=64K", "5G", "par-64k.hds" },
    };

    [QemuImgTheory]
    [MemberData(nameof(Created))]
    public void Info_matches_qemu_img(string format, string options, string size, string file)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-o", options, file, size);

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, file, backingChain: false, format);
        if (format != "vpc" || !options.Contains("fixed", System.StringComparison.Ordinal))
        {
            Qcow2ConformanceTests.AssertSameInfo(dir.Path, file, backingChain: false);
        }
        else
        {
            // qemu's blind spot: a fixed VHD has its footer only at the end and probes as raw; so do we.
            Qcow2ConformanceTests.AssertSameInfo(dir.Path, file, backingChain: false);
            Assert.Equal("raw", (string?)QemuImg.Info(dir.Path, file)["format"]);
        }

        AssertSameProbe(dir.Path, file);
    }

    [QemuImgFact]
    public void Info_matches_qemu_img_for_luks()
    {
        using var dir = new ScratchDirectory();
        CreateLuks(dir.Path, "luks.img");

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "luks.img", backingChain: false);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "luks.img", backingChain: false, "luks");
        AssertSameProbe(dir.Path, "luks.img");

        // A truncated volume: virtual size = file length (whole sectors) − payload offset.
        byte[] bytes = File.ReadAllBytes(Path.Combine(dir.Path, "luks.img"));
        File.WriteAllBytes(Path.Combine(dir.Path, "short.img"), bytes[..2500000]);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "short.img", backingChain: false);
    }

    internal static void CreateLuks(string directory, string file) =>
        QemuImg.Run(directory, "create", "-q", "-f", "luks", "--object", "secret,id=sec0,data=123456", "-o", "key-secret=sec0,iter-time=10", file, "1M");

    /// <summary>qemu-img info without -f reveals qemu's probe; ours must agree.</summary>
    internal static void AssertSameProbe(string directory, string file)
    {
        (int exit, string stdout, string stderr) = QemuImg.TryRun(directory, "info", "--output=json", file);
        string path = Path.Combine(directory, file);
        byte[] bytes = File.ReadAllBytes(path);
        ImageFormat ours = ImageFormatDetector.Detect(bytes.AsSpan(0, System.Math.Min(bytes.Length, 512)), file, bytes.Length);
        if (exit == 0)
        {
            Assert.Equal((string?)JsonNode.Parse(stdout)!["format"], ours.GetQemuName());
        }
        else
        {
            Assert.False(string.IsNullOrEmpty(stderr));
        }
    }
}
