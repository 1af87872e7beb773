using System;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Interop;

/// <summary>The <c>xml</c> and <c>rebase</c> commands of the CLI, run as users run them.</summary>
public sealed class CliXmlRebaseTests
{
    [QemuImgFact]
    public void Xml_prints_the_disk_for_a_declared_top_and_exits_0()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");

        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, "xml", "-f", "qcow2", "--target", "vdb", "top.qcow2");

        Assert.True(exit == 0, stderr);
        XElement disk = XElement.Parse(stdout);
        Assert.Equal("vdb", disk.Element("target")!.Attribute("dev")!.Value);
        Assert.Equal(dir["base.raw"], disk.Element("backingStore")!.Element("source")!.Attribute("file")!.Value);
    }

    [QemuImgFact]
    public void Xml_refuses_a_probed_top_whose_backing_is_untrusted_without_opening_it()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");

        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, "xml", "top.qcow2");

        Assert.Equal(1, exit);
        Assert.Empty(stdout);
        Assert.Single(stderr.TrimEnd('\n').Split('\n'));
        Assert.Contains("ProbedWithUntrustedReferences", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Xml_for_a_missing_file_is_one_line_and_exit_1()
    {
        using var dir = new ScratchDirectory();

        (int exit, _, string stderr) = CliRunner.Run(dir.Path, "xml", "-f", "qcow2", "nope.qcow2");

        Assert.Equal(1, exit);
        Assert.Single(stderr.TrimEnd('\n').Split('\n'));
    }

    [QemuImgFact]
    public void Rebase_records_the_backing_format_like_qemu_img()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "top.qcow2", "1M");

        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, "rebase", "-b", "base.raw", "-F", "raw", "top.qcow2");

        Assert.True(exit == 0, stderr);
        Assert.Empty(stdout);
        JsonNode info = QemuImg.Info(dir.Path, "top.qcow2");
        Assert.Equal("base.raw", (string)info["backing-filename"]!);
        Assert.Equal("raw", (string)info["backing-filename-format"]!);
    }

    [QemuImgFact]
    public void Rebase_refusal_is_one_line_and_exit_1()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "top.qcow2", "1M");

        (int exit, _, string stderr) = CliRunner.Run(dir.Path, "rebase", "-u", "-b", new string('x', 1024), "-F", "raw", "top.qcow2");

        Assert.Equal(1, exit);
        Assert.Single(stderr.TrimEnd('\n').Split('\n'));
        Assert.Contains("1023", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rebase", "-b", "base.raw", "top.qcow2")]
    [InlineData("rebase", "-F", "raw", "top.qcow2")]
    [InlineData("rebase", "-b", "base.raw", "-F")]
    [InlineData("xml", "--target", "vd a", "top.qcow2")]
    [InlineData("xml", "--bogus", "top.qcow2")]
    public void Usage_errors_exit_2(params string[] arguments)
    {
        using var dir = new ScratchDirectory();

        (int exit, _, _) = CliRunner.Run(dir.Path, arguments);

        Assert.Equal(2, exit);
    }
}
