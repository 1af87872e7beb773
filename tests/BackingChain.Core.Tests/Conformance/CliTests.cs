using System.IO;
using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>The <c>backing-chain</c> contract of docs/design.md: outputs, JSON shapes and exit codes.</summary>
public sealed class CliTests
{
    [QemuImgFact]
    public void Check_json_has_the_documented_shape_and_exit_codes()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");

        (int safeExit, string safeJson, _) = CliRunner.Run(dir.Path, "check", "-f", "qcow2", "--output", "json", "top.qcow2");
        (int unsafeExit, string unsafeJson, _) = CliRunner.Run(dir.Path, "check", "--output", "json", "top.qcow2");
        (int rootedExit, _, _) = CliRunner.Run(dir.Path, "check", "--trust-root", dir.Path, "top.qcow2");

        Assert.Equal(0, safeExit);
        JsonNode safe = JsonNode.Parse(safeJson)!;
        Assert.Equal("safe", (string)safe["verdict"]!);
        JsonArray layers = safe["layers"]!.AsArray();
        Assert.Equal(2, layers.Count);
        Assert.Equal("top.qcow2", (string)layers[0]!["filename"]!);
        Assert.Equal("qcow2", (string)layers[0]!["format"]!);
        Assert.Equal("declared", (string)layers[0]!["format-source"]!);
        Assert.Equal("accepted", (string)layers[0]!["decision"]!);
        Assert.Equal("base.raw", (string)layers[1]!["filename"]!);
        Assert.Equal("recorded", (string)layers[1]!["format-source"]!);
        Assert.NotNull(layers[1]!["reason"]);
        Assert.Empty(safe["findings"]!.AsArray());
        Assert.Empty(safe["remediation"]!.AsArray());

        Assert.Equal(1, unsafeExit);
        JsonNode @unsafe = JsonNode.Parse(unsafeJson)!;
        Assert.Equal("unsafe", (string)@unsafe["verdict"]!);
        Assert.Equal("probed", (string)@unsafe["layers"]![0]!["format-source"]!);
        Assert.Equal("rejected", (string)@unsafe["layers"]![0]!["decision"]!);
        Assert.Contains(@unsafe["findings"]!.AsArray(), f => (string)f!["code"]! == "probed-format-with-references" && (int)f["layer"]! == 0);

        Assert.Equal(0, rootedExit);
    }

    [QemuImgFact]
    public void Check_human_output_shows_the_chain_as_a_tree()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");

        (int exit, string output, _) = CliRunner.Run(dir.Path, "check", "-f", "qcow2", "top.qcow2");

        Assert.Equal(0, exit);
        string[] lines = output.Split('\n');
        Assert.StartsWith("top.qcow2", lines[0], System.StringComparison.Ordinal);
        Assert.Contains("declared", lines[0], System.StringComparison.Ordinal);
        Assert.Contains("└─ base.raw", lines[1], System.StringComparison.Ordinal);
        Assert.Contains("recorded", lines[1], System.StringComparison.Ordinal);
        Assert.Contains("verdict: safe", output, System.StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("frobnicate x")]
    [InlineData("check")]
    [InlineData("check --max-depth zero x")]
    [InlineData("check --trust-digest abc x")]
    [InlineData("check -f nope x")]
    [InlineData("info --output xml x")]
    [InlineData("info --bogus x")]
    public void Usage_errors_exit_2(string commandLine)
    {
        string[] arguments = commandLine.Split(' ', System.StringSplitOptions.RemoveEmptyEntries);
        (int exit, string stdout, string stderr) = CliRunner.Run(Path.GetTempPath(), arguments);

        Assert.Equal(2, exit);
        Assert.Empty(stdout);
        Assert.NotEmpty(stderr);
    }

    [QemuImgFact]
    public void Info_fails_with_one_line_on_stderr_like_qemu_img()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "does-not-exist.qcow2", "-F", "qcow2", "-o", "size=1M", "missing.qcow2");

        (int missingFile, _, string missingFileError) = CliRunner.Run(dir.Path, "info", "nothing-here.qcow2");
        (int missingBacking, string stdout, string missingBackingError) = CliRunner.Run(dir.Path, "info", "--backing-chain", "--output", "json", "missing.qcow2");
        (int topOnly, _, _) = CliRunner.Run(dir.Path, "info", "--output", "json", "missing.qcow2");
        (int qemuExit, _, string qemuError) = QemuImg.TryRun(dir.Path, "info", "--backing-chain", "missing.qcow2");

        Assert.Equal(1, missingFile);
        Assert.Single(missingFileError.TrimEnd('\n').Split('\n'));
        Assert.Equal(1, missingBacking);
        Assert.Empty(stdout);
        Assert.Contains("does-not-exist.qcow2", missingBackingError, System.StringComparison.Ordinal);
        Assert.Equal(qemuExit, missingBacking);
        Assert.Contains("No such file or directory", qemuError, System.StringComparison.Ordinal);
        Assert.Contains("No such file or directory", missingBackingError, System.StringComparison.Ordinal);
        Assert.Equal(0, topOnly);
    }

    [QemuImgFact]
    public void Info_human_output_names_format_as_qemu_img_does()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");

        (int exit, string output, _) = CliRunner.Run(dir.Path, "info", "image.qcow2");

        // qemu-img's line, with nothing added: where the format came from is check's business.
        Assert.Equal(0, exit);
        Assert.Contains("image: image.qcow2", output, System.StringComparison.Ordinal);
        Assert.Contains(QemuImg.Run(dir.Path, "info", "image.qcow2").Split('\n')[1], output.Split('\n'));
        Assert.Contains("file format: qcow2", output.Split('\n'));
        Assert.Contains("virtual size: 1 MiB (1048576 bytes)", output, System.StringComparison.Ordinal);
        Assert.Contains("cluster_size: 65536", output.Split((char)10));
    }
}
