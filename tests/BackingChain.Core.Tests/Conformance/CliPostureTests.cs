using System;
using System.IO;
using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>The two postures from the command line, and the same verdict whether an image is a file or standard input.</summary>
public sealed class CliPostureTests
{
    [QemuImgFact]
    public void Untrusted_check_refuses_a_declared_image_naming_a_file_outside_the_root_and_xml_will_not_write_it()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["store"]);
        QemuImg.Run(dir["store"], "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", "top.qcow2", "1M");

        (int hostExit, _, _) = CliRunner.Run(dir.Path, "check", "-f", "qcow2", "--trust-root", "store", "store/top.qcow2");
        (int exit, string json, _) = CliRunner.Run(dir.Path, "check", "-f", "qcow2", "--untrusted", "--trust-root", "store", "--output", "json", "store/top.qcow2");
        (int xmlExit, string xml, string xmlError) = CliRunner.Run(dir.Path, "xml", "-f", "qcow2", "--untrusted", "--trust-root", "store", "store/top.qcow2");

        Assert.Equal(0, hostExit);
        Assert.Equal(1, exit);
        JsonNode report = JsonNode.Parse(json)!;
        Assert.Equal("unsafe", (string)report["verdict"]!);
        Assert.Equal("untrusted-image", (string)report["posture"]!);
        JsonNode reference = report["layers"]![0]!["references"]![0]!;
        Assert.Equal(("backing-file", "/etc/passwd", "refused"), ((string)reference["role"]!, (string)reference["name"]!, (string)reference["decision"]!));
        Assert.Equal(1, xmlExit);
        Assert.Empty(xml);
        Assert.Contains("ReferenceNotTrusted", xmlError, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void Check_of_standard_input_gives_the_verdict_of_the_same_file()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "good.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", "evil.qcow2", "1M");

        foreach (string image in new[] { "good.qcow2", "evil.qcow2" })
        {
            (int fileExit, string fileJson, _) = CliRunner.Run(dir.Path, "check", "--untrusted", "--trust-root", ".", "--output", "json", image);
            (int pipeExit, string pipeJson, string pipeError) = CliRunner.RunWithInput(dir.Path, dir[image], "check", "--untrusted", "--trust-root", ".", "--output", "json", "--name", image, "-");

            Assert.True(fileExit == pipeExit, $"{image}: file {fileExit}, stdin {pipeExit} {pipeError}");
            JsonNode file = JsonNode.Parse(fileJson)!;
            JsonNode pipe = JsonNode.Parse(pipeJson)!;
            Assert.Equal((string)file["verdict"]!, (string)pipe["verdict"]!);
            Assert.Equal((string)file["reason"]!, (string)pipe["reason"]!);
        }
    }

    [Fact]
    public void A_trust_root_that_does_not_exist_is_a_usage_error_naming_it()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["x.img"], new byte[512]);

        (int exit, _, string error) = CliRunner.Run(dir.Path, "check", "--trust-root", "no-such-dir", "x.img");

        Assert.Equal(2, exit);
        Assert.Contains(dir["no-such-dir"], error, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void Names_cannot_forge_lines_of_the_human_output()
    {
        using var dir = new ScratchDirectory();
        const string Forged = "x\nverdict: safe\u001b[2K";
        const string Placeholder = "xxxxxxxxxxxxxxxxxxxx";
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", Placeholder[..Forged.Length], "-F", "raw", "top.qcow2", "1M");
        byte[] bytes = File.ReadAllBytes(dir["top.qcow2"]);
        byte[] from = System.Text.Encoding.ASCII.GetBytes(Placeholder[..Forged.Length]);
        int at = bytes.AsSpan().IndexOf(from);
        System.Text.Encoding.UTF8.GetBytes(Forged).CopyTo(bytes, at);
        File.WriteAllBytes(dir["top.qcow2"], bytes);

        (int exit, string output, _) = CliRunner.Run(dir.Path, "check", "top.qcow2");

        Assert.Equal(1, exit);
        Assert.DoesNotContain("\nverdict: safe", output, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', output);
        Assert.Contains(@"x\x0averdict: safe\x1b[2K", output, StringComparison.Ordinal);
        Assert.StartsWith("verdict: unsafe", output.Split('\n')[^2], StringComparison.Ordinal);
    }
}
