using System;
using System.Diagnostics;
using System.IO;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Editing;

/// <summary>
/// <c>backing-chain check --fix</c>, run as users run it: missing backing formats of layers the verdict accepts are
/// recorded (qemu-img info then shows them), a probed layer the rule refuses is not blessed, and qemu's locks hold.
/// </summary>
public sealed class CliCheckFixTests
{
    [QemuImgFact]
    public void Check_fix_records_the_format_of_a_probed_raw_base_and_judges_again()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.raw", "-F", "raw", "top.qcow2");
        CliRelocateTests.DropBackingFormat(dir["top.qcow2"]);
        Assert.Null(QemuImg.Info(dir.Path, "top.qcow2")["backing-filename-format"]);
        JsonNode before = JsonNode.Parse(CliRunner.Run(dir.Path, "check", "-f", "qcow2", "--output", "json", "top.qcow2").StandardOutput)!;
        Assert.Equal("probed", (string)before["layers"]![1]!["format-source"]!);
        Assert.Single(before["remediation"]!.AsArray());

        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, "check", "-f", "qcow2", "--fix", "top.qcow2");

        Assert.True(exit == 0, stderr);
        Assert.Contains("fixed: top.qcow2: recorded backing format raw for 'base.raw'", stdout, StringComparison.Ordinal);
        JsonNode info = QemuImg.Info(dir.Path, "top.qcow2");
        Assert.Equal("raw", (string)info["backing-filename-format"]!);
        Assert.Equal("base.raw", (string)info["backing-filename"]!);
        CliRelocateTests.AssertClean(dir, "top.qcow2");

        // The verdict printed is the new one: the base's format is now recorded, and nothing is left to fix.
        Assert.Contains("base.raw  [raw, recorded]", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("fix: qemu-img", stdout, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void Check_fix_with_json_output_keeps_one_document_on_stdout_and_fixes_a_qed_image()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qed", "-b", "base.raw", "-F", "raw", "top.qed");
        ClearQedRawBackingFeature(dir["top.qed"]);
        Assert.Null(QemuImg.Info(dir.Path, "top.qed")["backing-filename-format"]);

        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, "check", "-f", "qed", "--fix", "--output", "json", "top.qed");

        Assert.True(exit == 0, stderr);
        Assert.Contains("fixed: top.qed: recorded backing format raw", stderr, StringComparison.Ordinal);
        JsonNode report = JsonNode.Parse(stdout)!;
        Assert.Equal("safe", (string)report["verdict"]!);
        Assert.Equal("recorded", (string)report["layers"]![1]!["format-source"]!);
        Assert.Equal("raw", (string)QemuImg.Info(dir.Path, "top.qed")["backing-filename-format"]!);
        CliRelocateTests.AssertClean(dir, "top.qed");
    }

    [QemuImgFact]
    public void Check_fix_does_not_record_the_format_of_a_probed_layer_the_rule_refuses()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "mid.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");
        CliRelocateTests.DropBackingFormat(dir["top.qcow2"]);
        string before = CliRelocateTests.Hash(dir["top.qcow2"]);
        string midBefore = CliRelocateTests.Hash(dir["mid.qcow2"]);

        // mid.qcow2 is probed and names a file nobody trusts: refused, so recording "qcow2" for it would bless it.
        (int exit, string stdout, _) = CliRunner.Run(dir.Path, "check", "-f", "qcow2", "--fix", "top.qcow2");

        Assert.Equal(1, exit);
        Assert.Contains("REJECTED", stdout, StringComparison.Ordinal);
        Assert.Contains("fixed: nothing", stdout, StringComparison.Ordinal);
        Assert.Equal(before, CliRelocateTests.Hash(dir["top.qcow2"]));
        Assert.Equal(midBefore, CliRelocateTests.Hash(dir["mid.qcow2"]));
        Assert.Null(QemuImg.Info(dir.Path, "top.qcow2")["backing-filename-format"]);

        // Once the files it names are trusted, the rule accepts it and the same command records its format.
        (exit, stdout, string stderr) = CliRunner.Run(dir.Path, "check", "-f", "qcow2", "--trust-root", dir.Path, "--fix", "top.qcow2");

        Assert.True(exit == 0, stderr + stdout);
        Assert.Equal("qcow2", (string)QemuImg.Info(dir.Path, "top.qcow2")["backing-filename-format"]!);
        Assert.Equal(3, QemuImg.Info(dir.Path, "top.qcow2", backingChain: true).AsArray().Count);
        CliRelocateTests.AssertClean(dir, "top.qcow2");
    }

    [QemuImgFact]
    public async Task Check_fix_refuses_an_image_qemu_nbd_serves_and_changes_nothing()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.raw", "-F", "raw", "top.qcow2");
        CliRelocateTests.DropBackingFormat(dir["top.qcow2"]);
        string before = CliRelocateTests.Hash(dir["top.qcow2"]);

        int exit;
        string stderr;
        using (Process nbd = await QemuLockTests.StartQemuNbdAsync(dir, "top.qcow2", readOnly: true))
        {
            try
            {
                (exit, _, stderr) = CliRunner.Run(dir.Path, "check", "-f", "qcow2", "--fix", "top.qcow2");
            }
            finally
            {
                nbd.Kill();
                await nbd.WaitForExitAsync();
            }
        }

        Assert.Equal(1, exit);
        Assert.Contains("Could not fix 'top.qcow2'", stderr, StringComparison.Ordinal);
        Assert.Equal(before, CliRelocateTests.Hash(dir["top.qcow2"]));
    }

    [Fact]
    public void Check_fix_of_standard_input_is_a_usage_error()
    {
        using var dir = new ScratchDirectory();

        (int exit, _, string stderr) = CliRunner.Run(dir.Path, "check", "--fix", "-");

        Assert.Equal(2, exit);
        Assert.Contains("usage: backing-chain check", stderr, StringComparison.Ordinal);
    }

    /// <summary>QED records "the backing file is raw" as feature bit 2 (value 4) of the little-endian features at offset 16.</summary>
    private static void ClearQedRawBackingFeature(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(5, bytes[16] & 5); // backing file and raw backing format
        bytes[16] &= unchecked((byte)~4);
        File.WriteAllBytes(path, bytes);
    }
}
