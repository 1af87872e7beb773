using System;
using System.IO;
using System.Text;
using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// Differencing VHD and VHDX images (byte-made: qemu-img cannot make them) whose parent is named only by a Windows
/// path: <c>info --backing-chain</c> shows the layer it can read and names the parent it will not open, where it
/// used to fail; <c>check</c> still calls the chain unsafe.
/// </summary>
public sealed class CliWindowsParentTests
{
    [QemuImgFact]
    public void Info_backing_chain_shows_a_vhd_with_a_windows_parent_as_qemu_img_shows_it()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "-o", "subformat=dynamic", "parent.vhd", "1M");
        byte[] child = ImageBytes.VhdDifferencing(
            File.ReadAllBytes(dir["parent.vhd"]), Guid.NewGuid(), string.Empty,
            ("W2ru", Encoding.Unicode.GetBytes(@".\parent.vhd")),
            ("W2ku", Encoding.Unicode.GetBytes(@"C:\images\parent.vhd")));
        File.WriteAllBytes(dir["child.vhd"], child);

        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, "info", "--backing-chain", "--output", "json", "child.vhd");

        // qemu-img ignores VHD parents and prints the one layer; so do we, and say which parent was left unopened.
        Assert.True(exit == 0, stderr);
        JsonNode expected = QemuImg.Info(dir.Path, "child.vhd", backingChain: true);
        JsonNode actual = JsonNode.Parse(stdout)!;
        Assert.Equal(expected.AsArray().Count, actual.AsArray().Count);
        foreach (string key in new[] { "filename", "format", "virtual-size" })
        {
            Assert.Equal(expected[0]![key]!.ToJsonString(), actual[0]![key]!.ToJsonString());
        }

        Assert.Contains("Windows path", stderr, StringComparison.Ordinal);
        Assert.Contains(@"parent.vhd", stderr, StringComparison.Ordinal);

        (exit, stdout, stderr) = CliRunner.Run(dir.Path, "info", "--backing-chain", "child.vhd");
        Assert.True(exit == 0, stderr);
        Assert.StartsWith("image: child.vhd\nfile format: vpc\n", stdout, StringComparison.Ordinal);

        (exit, stdout, _) = CliRunner.Run(dir.Path, "check", "child.vhd");
        Assert.Equal(1, exit);
        Assert.Contains("verdict: unsafe", stdout, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void Info_backing_chain_shows_a_vhdx_with_a_windows_parent_that_qemu_img_refuses()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vhdx", "parent.vhdx", "1M");
        byte[] child = ImageBytes.VhdxDifferencing(
            File.ReadAllBytes(dir["parent.vhdx"]),
            ("parent_linkage", "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}"),
            ("relative_path", @".\parent.vhdx"),
            ("absolute_win32_path", @"C:\images\parent.vhdx"));
        File.WriteAllBytes(dir["child.vhdx"], child);
        Assert.NotEqual(0, QemuImg.TryRun(dir.Path, "info", "child.vhdx").ExitCode);

        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, "info", "-f", "vhdx", "--backing-chain", "--output", "json", "child.vhdx");

        Assert.True(exit == 0, stderr);
        JsonNode layer = Assert.Single(JsonNode.Parse(stdout)!.AsArray())!;
        Assert.Equal("vhdx", (string)layer["format"]!);
        Assert.Equal(1048576, (long)layer["virtual-size"]!);
        Assert.Contains("Windows path", stderr, StringComparison.Ordinal);

        (exit, stdout, _) = CliRunner.Run(dir.Path, "check", "-f", "vhdx", "--output", "json", "child.vhdx");
        Assert.Equal(1, exit);
        Assert.Equal("unsafe", (string)JsonNode.Parse(stdout)!["verdict"]!);
    }

    [QemuImgFact]
    public void Info_backing_chain_still_fails_for_a_posix_parent_that_is_missing()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", "-o", "size=1M", "top.qcow2");
        Assert.NotEqual(0, QemuImg.TryRun(dir.Path, "info", "--backing-chain", "top.qcow2").ExitCode);

        (int exit, string stdout, _) = CliRunner.Run(dir.Path, "info", "--backing-chain", "top.qcow2");

        Assert.Equal(1, exit);
        Assert.Empty(stdout);
    }
}
