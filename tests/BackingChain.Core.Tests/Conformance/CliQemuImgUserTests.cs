using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>The CLI as someone used to qemu-img tries it: help, version, option spellings, rebase's flags, info's lines and errors.</summary>
public sealed partial class CliQemuImgUserTests
{
    /// <summary>The commands the CLI contract (docs/design.md) lists (scan and relocate are not in this build).</summary>
    public static TheoryData<string, string> HelpCases()
    {
        var cases = new TheoryData<string, string>();
        foreach (string command in new[] { "info", "check", "xml", "domain", "rebase" })
        {
            cases.Add(command, "-h");
            cases.Add(command, "--help");
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(HelpCases))]
    public void Help_on_every_command_prints_its_usage_and_exits_0(string command, string flag)
    {
        (int exit, string stdout, string stderr) = CliRunner.Run(Path.GetTempPath(), command, flag);

        Assert.Equal(0, exit);
        Assert.Empty(stderr);
        Assert.StartsWith($"usage: backing-chain {command} ", stdout, StringComparison.Ordinal);
        Assert.Single(Regex.Matches(stdout, "usage:"));
    }

    [Fact]
    public void General_help_and_version_exit_0()
    {
        (int helpExit, string help, _) = CliRunner.Run(Path.GetTempPath(), "--help");
        (int versionExit, string version, string versionError) = CliRunner.Run(Path.GetTempPath(), "--version");

        Assert.Equal(0, helpExit);
        foreach (string command in new[] { "info", "check", "xml", "domain", "rebase" })
        {
            Assert.Contains($"usage: backing-chain {command} ", help, StringComparison.Ordinal);
        }

        Assert.Equal(0, versionExit);
        Assert.Empty(versionError);
        Assert.Matches(@"^backing-chain version \d+\.\d+\.\d+", version);
    }

    [Theory]
    [InlineData("info --bogus x", "--bogus", "info")]
    [InlineData("check --backing-chain x", "--backing-chain", "check")]
    [InlineData("rebase -z -b b -F raw x", "-z", "rebase")]
    [InlineData("domain -f qcow2 d.xml", "-f", "domain")]
    public void Unknown_option_is_named_with_one_usage_line(string commandLine, string option, string command)
    {
        (int exit, string stdout, string stderr) = CliRunner.Run(Path.GetTempPath(), commandLine.Split(' '));

        Assert.Equal(2, exit);
        Assert.Empty(stdout);
        string[] lines = stderr.TrimEnd('\n').Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.Contains($"'{option}'", lines[0], StringComparison.Ordinal);
        Assert.StartsWith($"usage: backing-chain {command} ", lines[1], StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void Output_json_with_an_equals_sign_is_the_same_as_with_a_space()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");

        (int spaced, string spacedJson, _) = CliRunner.Run(dir.Path, "info", "--output", "json", "image.qcow2");
        (int joined, string joinedJson, _) = CliRunner.Run(dir.Path, "info", "--output=json", "image.qcow2");
        (int flagged, _, string flaggedError) = CliRunner.Run(dir.Path, "info", "--backing-chain=yes", "image.qcow2");

        Assert.Equal(0, spaced);
        Assert.Equal(0, joined);
        Assert.Equal(spacedJson, joinedJson);
        Assert.Equal("qcow2", (string)JsonNode.Parse(joinedJson)!["format"]!);
        Assert.Equal(2, flagged);
        Assert.Contains("takes no value", flaggedError, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void Rebase_takes_u_and_f_like_qemu_img_and_says_when_u_is_implied()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "new.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "other.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "top.qcow2", "1M");

        (int withU, _, string withUError) = CliRunner.Run(dir.Path, "rebase", "-f", "qcow2", "-u", "-b", "new.raw", "-F", "raw", "top.qcow2");
        JsonNode afterU = QemuImg.Info(dir.Path, "top.qcow2");
        (int withoutU, _, string withoutUError) = CliRunner.Run(dir.Path, "rebase", "-b", "other.raw", "-F", "raw", "top.qcow2");
        JsonNode afterNoU = QemuImg.Info(dir.Path, "top.qcow2");
        (int wrongFormat, _, string wrongFormatError) = CliRunner.Run(dir.Path, "rebase", "-f", "qcow2", "-u", "-b", "top.qcow2", "-F", "qcow2", "new.raw");
        (int qemuWrongFormat, _, string qemuWrongFormatError) = QemuImg.TryRun(dir.Path, "rebase", "-f", "qcow2", "-u", "-b", "top.qcow2", "-F", "qcow2", "new.raw");

        Assert.Equal(0, withU);
        Assert.Empty(withUError);
        Assert.Equal("new.raw", (string)afterU["backing-filename"]!);
        Assert.Equal(0, withoutU);
        Assert.Contains("-u", withoutUError, StringComparison.Ordinal);
        Assert.Equal("other.raw", (string)afterNoU["backing-filename"]!);

        // qemu-img refuses to treat a raw file as qcow2; so does the CLI, and the file is left as it was.
        Assert.Equal(qemuWrongFormat, wrongFormat);
        Assert.Contains("qcow2", qemuWrongFormatError, StringComparison.Ordinal);
        Assert.NotEmpty(wrongFormatError);
        Assert.Equal("raw", (string)QemuImg.Info(dir.Path, "new.raw")["format"]!);
    }

    [QemuImgFact]
    public void Human_info_prints_the_lines_qemu_img_prints()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "3M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,extended_l2=on", "-b", "base.raw", "-F", "raw", "top.qcow2");
        Directory.CreateDirectory(dir["sub"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "../top.qcow2", "-F", "qcow2", "sub/v2.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "disk.vmdk", "1536K");

        foreach (string[] arguments in new[]
        {
            new[] { "info", "top.qcow2" },
            new[] { "info", "base.raw" },
            new[] { "info", "disk.vmdk" },
            new[] { "info", "--backing-chain", "sub/v2.qcow2" },
        })
        {
            string expected = QemuImg.Run(dir.Path, arguments);
            (int exit, string actual, string error) = CliRunner.Run(dir.Path, arguments);

            Assert.True(exit == 0, error);
            Assert.Equal(expected, actual);
        }
    }

    [QemuImgFact]
    public void Errors_are_worded_without_resource_keys()
    {
        using var dir = new ScratchDirectory();
        (_, _, string qemuError) = QemuImg.TryRun(dir.Path, "rebase", "-u", "-b", "b.raw", "-F", "raw", "missing.qcow2");

        (int rebaseExit, _, string rebaseError) = CliRunner.Run(dir.Path, "rebase", "-u", "-b", "b.raw", "-F", "raw", "missing.qcow2");
        (int domainExit, _, string domainError) = CliRunner.Run(dir.Path, "domain", "missing.xml");

        Assert.Contains("No such file or directory", qemuError, StringComparison.Ordinal);
        foreach ((int exit, string error) in new[] { (rebaseExit, rebaseError), (domainExit, domainError) })
        {
            Assert.Equal(1, exit);
            Assert.Contains("No such file or directory", error, StringComparison.Ordinal);
            Assert.DoesNotMatch(ResourceKey(), error);
            Assert.Single(error.TrimEnd('\n').Split('\n'));
        }
    }

    [QemuImgFact]
    public void Info_json_keys_come_in_qemu_img_order()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", "-b", "base.raw", "-F", "raw", "top.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "disk.vmdk", "1M");

        foreach (string[] arguments in new[]
        {
            new[] { "info", "--output=json", "top.qcow2" },
            new[] { "info", "--output=json", "base.raw" },
            new[] { "info", "--output=json", "disk.vmdk" },
            new[] { "info", "--output=json", "--backing-chain", "top.qcow2" },
        })
        {
            JsonNode expected = JsonNode.Parse(QemuImg.Run(dir.Path, arguments))!;
            (int exit, string output, string error) = CliRunner.Run(dir.Path, arguments);
            Assert.True(exit == 0, error);

            Assert.Equal(KeyOrder(expected), KeyOrder(JsonNode.Parse(output)!));
        }
    }

    /// <summary>Every object's keys in document order, with their paths, so a difference names where it is.</summary>
    private static List<string> KeyOrder(JsonNode node, string path = "$")
    {
        var keys = new List<string>();
        switch (node)
        {
            case JsonObject obj:
                foreach (KeyValuePair<string, JsonNode?> property in obj)
                {
                    keys.Add($"{path}.{property.Key}");
                    if (property.Value is not null)
                    {
                        keys.AddRange(KeyOrder(property.Value, $"{path}.{property.Key}"));
                    }
                }

                break;
            case JsonArray array:
                for (int i = 0; i < array.Count; i++)
                {
                    keys.AddRange(KeyOrder(array[i]!, $"{path}[{i}]"));
                }

                break;
        }

        return keys;
    }

    /// <summary>What .NET prints instead of a message when resources are stripped: <c>IO_FileNotFound_FileName</c>, <c>Arg_...</c>.</summary>
    [GeneratedRegex(@"\b[A-Z][A-Za-z0-9]*_[A-Za-z0-9_]+\b")]
    private static partial Regex ResourceKey();
}
