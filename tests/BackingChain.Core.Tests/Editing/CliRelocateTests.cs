using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Editing;

/// <summary>
/// <c>backing-chain relocate</c>, run as users run it: chains made by qemu-img, moved with <c>mv</c>, relocated, and
/// then opened by qemu-img, which must see the whole chain and find every image clean.
/// </summary>
public sealed class CliRelocateTests
{
    [QemuImgFact]
    public void Relocate_lets_qemu_img_open_a_moved_chain_with_relative_names_inside_the_tree()
    {
        using var dir = new ScratchDirectory();
        MakeThreeLayerChain(dir);
        Move(dir, "old", "new");
        Assert.NotEqual(0, QemuImg.TryRun(dir.Path, "info", "--backing-chain", "new/vm/top.qcow2").ExitCode);

        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, "relocate", "--from", "old", "--to", "new", "new/vm/top.qcow2", "new/vm/mid.qcow2");

        Assert.True(exit == 0, stderr);
        Assert.Contains("new/vm/mid.qcow2", stdout, StringComparison.Ordinal);
        JsonNode chain = QemuImg.Info(dir.Path, "new/vm/top.qcow2", backingChain: true);
        Assert.Equal(3, chain.AsArray().Count);

        // Both images and their backing images moved together: the names are relative to each image's directory,
        // and the recorded formats are the ones qemu-img wrote.
        Assert.Equal("mid.qcow2", (string)chain[0]!["backing-filename"]!);
        Assert.Equal("qcow2", (string)chain[0]!["backing-filename-format"]!);
        Assert.Equal("../base/base.raw", (string)chain[1]!["backing-filename"]!);
        Assert.Equal("raw", (string)chain[1]!["backing-filename-format"]!);
        Assert.Equal("raw", (string)chain[2]!["format"]!);
        AssertClean(dir, "new/vm/top.qcow2");
        AssertClean(dir, "new/vm/mid.qcow2");

        // Relative names survive the next move without another relocation.
        Move(dir, "new", "again");
        Assert.Equal(3, QemuImg.Info(dir.Path, "again/vm/top.qcow2", backingChain: true).AsArray().Count);
    }

    [QemuImgFact]
    public void Relocate_dry_run_prints_the_plan_and_changes_no_byte()
    {
        using var dir = new ScratchDirectory();
        MakeThreeLayerChain(dir);
        Move(dir, "old", "new");
        string[] images = ["new/vm/top.qcow2", "new/vm/mid.qcow2", "new/base/base.raw"];
        string[] before = images.Select(i => Hash(dir[i])).ToArray();

        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, ["relocate", "--dry-run", "--from", "old", "--to", "new", .. images]);

        // The raw base names no other file: listed (as a shell glob would list it) and left alone.
        Assert.True(exit == 0, stderr);
        Assert.Contains("new/base/base.raw: raw image naming no other file, unchanged", stdout, StringComparison.Ordinal);
        Assert.Equal(before, images.Select(i => Hash(dir[i])).ToArray());
        Assert.Contains("'../base/base.raw'", stdout, StringComparison.Ordinal);
        Assert.Contains("'mid.qcow2'", stdout, StringComparison.Ordinal);
        Assert.NotEqual(0, QemuImg.TryRun(dir.Path, "info", "--backing-chain", "new/vm/top.qcow2").ExitCode);
    }

    [QemuImgFact]
    public void Relocate_names_a_moved_backing_image_absolutely_from_an_image_outside_the_tree()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["old"]);
        Directory.CreateDirectory(dir["keep"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "old/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "../old/base.raw", "-F", "raw", "keep/top.qcow2");
        Move(dir, "old", "new");

        (int exit, _, string stderr) = CliRunner.Run(dir.Path, "relocate", "--from", "old", "--to", "new", "keep/top.qcow2");

        Assert.True(exit == 0, stderr);
        JsonNode chain = QemuImg.Info(dir.Path, "keep/top.qcow2", backingChain: true);
        Assert.Equal(2, chain.AsArray().Count);
        string name = (string)chain[0]!["backing-filename"]!;
        Assert.StartsWith("/", name, StringComparison.Ordinal);
        Assert.EndsWith("/new/base.raw", name, StringComparison.Ordinal);
        Assert.Equal("raw", (string)chain[0]!["backing-filename-format"]!);
        AssertClean(dir, "keep/top.qcow2");
    }

    [QemuImgFact]
    public void Relocate_keeps_a_missing_backing_format_missing()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["old"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "old/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", dir["old/base.raw"], "-F", "raw", "old/top.qcow2");
        DropBackingFormat(dir["old/top.qcow2"]);
        Move(dir, "old", "new");

        (int exit, _, string stderr) = CliRunner.Run(dir.Path, "relocate", "--from", "old", "--to", "new", "new/top.qcow2");

        Assert.True(exit == 0, stderr);
        JsonNode info = QemuImg.Info(dir.Path, "new/top.qcow2");
        Assert.Equal("base.raw", (string)info["backing-filename"]!);
        Assert.Null(info["backing-filename-format"]);
        AssertClean(dir, "new/top.qcow2");
    }

    [QemuImgFact]
    public void Relocate_refuses_a_name_that_does_not_fit_and_writes_no_image()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["old"]);
        Directory.CreateDirectory(dir["keep"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "old/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", dir["old/base.raw"], "-F", "raw", "old/inside.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "../old/base.raw", "-F", "raw", "keep/top.qcow2");

        // The new place is deeper than a qcow2 backing name may be long (1023 bytes), and keep/ lies outside it, so its
        // image would need the absolute name. The image inside the tree, listed first, would get a short relative one.
        string deep = string.Join('/', Enumerable.Repeat(new string('d', 200), 6));
        Directory.CreateDirectory(dir[deep]);
        Move(dir, "old", deep + "/new");
        string[] images = [deep + "/new/inside.qcow2", "keep/top.qcow2"];
        string[] before = images.Select(i => Hash(dir[i])).ToArray();

        (int exit, _, string stderr) = CliRunner.Run(dir.Path, ["relocate", "--from", "old", "--to", deep + "/new", .. images]);

        Assert.Equal(1, exit);
        Assert.Contains("1023", stderr, StringComparison.Ordinal);
        Assert.Equal(before, images.Select(i => Hash(dir[i])).ToArray());
        Assert.Equal("../old/base.raw", (string)QemuImg.Info(dir.Path, "keep/top.qcow2")["backing-filename"]!);
    }

    [QemuImgFact]
    public void Relocate_reports_the_external_data_file_it_leaves_with_a_command_that_fixes_it()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["old"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=" + dir["old/data.raw"], "old/image.qcow2", "1M");
        Move(dir, "old", "new");

        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, "relocate", "--from", "old", "--to", "new", "new/image.qcow2");

        Assert.Equal(1, exit);
        Assert.Contains("no backing file", stdout, StringComparison.Ordinal);
        Assert.Contains("not relocated", stderr, StringComparison.Ordinal);
        Assert.NotEqual(0, QemuImg.TryRun(dir.Path, "check", "new/image.qcow2").ExitCode);

        // The command printed is the fix: after it, qemu-img opens the image and its data file at the new place.
        string command = stderr.Split("run: ", 2)[1].TrimEnd('\n');
        Assert.Equal(0, ProcessRunner.Run("sh", ["-c", command], dir.Path).ExitCode);

        AssertClean(dir, "new/image.qcow2");
        Assert.Equal(dir["new/data.raw"], (string)QemuImg.Info(dir.Path, "new/image.qcow2")["format-specific"]!["data"]!["data-file"]!);
    }

    [Theory]
    [InlineData("relocate", "--to", "new", "image.qcow2")]
    [InlineData("relocate", "--from", "old", "image.qcow2")]
    [InlineData("relocate", "--from", "old", "--to", "new")]
    [InlineData("relocate", "--bogus", "--from", "old", "--to", "new", "image.qcow2")]
    public void Relocate_usage_errors_exit_2(params string[] arguments)
    {
        using var dir = new ScratchDirectory();

        (int exit, _, string stderr) = CliRunner.Run(dir.Path, arguments);

        Assert.Equal(2, exit);
        Assert.Contains("usage: backing-chain relocate", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Relocate_help_prints_its_usage_and_exits_0()
    {
        using var dir = new ScratchDirectory();

        (int exit, string stdout, _) = CliRunner.Run(dir.Path, "relocate", "-h");

        Assert.Equal(0, exit);
        Assert.StartsWith("usage: backing-chain relocate [--dry-run] --from OLD --to NEW IMAGE...", stdout, StringComparison.Ordinal);
    }

    /// <summary>old/base/base.raw &lt;- old/vm/mid.qcow2 (absolute name) &lt;- old/vm/top.qcow2 (absolute name), formats recorded.</summary>
    private static void MakeThreeLayerChain(ScratchDirectory dir)
    {
        Directory.CreateDirectory(dir["old/base"]);
        Directory.CreateDirectory(dir["old/vm"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "old/base/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", dir["old/base/base.raw"], "-F", "raw", "old/vm/mid.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", dir["old/vm/mid.qcow2"], "-F", "qcow2", "old/vm/top.qcow2");
    }

    /// <summary>Moves a directory the way people do, with mv.</summary>
    private static void Move(ScratchDirectory dir, string from, string to)
    {
        Assert.Equal(0, ProcessRunner.Run("mv", ["--", from, to], dir.Path).ExitCode);
    }

    /// <summary>A version 2 qcow2 keeps its extensions right after the 72-byte header: zeroing the first one's magic drops the backing format.</summary>
    internal static void DropBackingFormat(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(0xE2792ACAu, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(0x48)));
        Array.Clear(bytes, 0x48, 8);
        File.WriteAllBytes(path, bytes);
    }

    internal static void AssertClean(ScratchDirectory dir, string image)
    {
        (int exit, string stdout, string stderr) = QemuImg.TryRun(dir.Path, "check", image);
        Assert.True(exit == 0, $"qemu-img check {image}: {stdout}{stderr}");
    }

    internal static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}
