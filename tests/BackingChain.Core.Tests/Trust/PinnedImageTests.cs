using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Trust;

/// <summary>
/// A pin vouches for the content at a location the host chose; it never makes a name a header chose worth opening.
/// Proven on the system calls themselves: every file call the CLI makes is traced, for each input shape.
/// </summary>
public sealed class PinnedImageTests
{
    [StraceTheory]
    [InlineData("probed file", false, false)]
    [InlineData("declared file, untrusted posture", true, false)]
    [InlineData("upload on standard input", true, true)]
    public void A_name_no_root_holds_and_no_pin_names_is_never_touched_while_pins_exist(string shape, bool declared, bool standardInput)
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["pins"]);
        Directory.CreateDirectory(dir["guest"]);
        QemuImg.Run(dir["pins"], "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir["guest"], "create", "-q", "-f", "raw", "secret.raw", "1M");
        string digest = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(dir["pins/base.raw"])));

        // The header names a file that exists and whose content even matches the pin: only the name differs.
        QemuImg.Run(dir["guest"], "create", "-q", "-f", "qcow2", "-u", "-b", dir["guest/secret.raw"], "-F", "raw", "evil.qcow2", "1M");
        QemuImg.Run(dir["guest"], "create", "-q", "-f", "qcow2", "-u", "-b", dir["pins/base.raw"], "-F", "raw", "good.qcow2", "1M");
        File.Copy(dir["pins/base.raw"], dir["guest/secret.raw"], overwrite: true);

        string[] Run(string image, out ProcessResult result)
        {
            string log = dir[$"{image}.strace"];
            string[] check = ["check", "--output", "json", "--trust-digest", $"{digest}={dir["pins/base.raw"]}"];
            if (declared)
            {
                check = [.. check, "--untrusted", "-f", "qcow2"];
            }

            check = standardInput ? [.. check, "--name", dir[$"guest/{image}"], "-"] : [.. check, dir[$"guest/{image}"]];
            result = ProcessRunner.Run(
                "strace",
                ["-f", "-qq", "-o", log, "-e", "trace=%file",
                 "dotnet", Path.Combine(AppContext.BaseDirectory, "backing-chain.dll"), .. check],
                dir.Path,
                standardInputFile: standardInput ? dir[$"guest/{image}"] : null);
            return File.ReadAllLines(log);
        }

        string[] evil = Run("evil.qcow2", out ProcessResult refused);
        string[] good = Run("good.qcow2", out ProcessResult pinned);

        Assert.True(refused.ExitCode == 1, $"{shape}: {refused.StandardOutput}{refused.StandardError}");
        string[] touched = evil.Where(line => line.Contains("secret.raw", StringComparison.Ordinal)).ToArray();
        Assert.True(touched.Length == 0, $"{shape}: the refused name was touched:\n{string.Join('\n', touched)}");

        // The pinned location is opened, hashed and trusted: the same run would have seen a touch of the other name.
        Assert.True(pinned.ExitCode == 0, $"{shape}: {pinned.StandardOutput}{pinned.StandardError}");
        JsonNode reference = JsonNode.Parse(pinned.StandardOutput)!["layers"]![0]!["references"]![0]!;
        Assert.Equal(("opened", "digest"), ((string?)reference["decision"], (string?)reference["trusted-by"]));
        Assert.Contains(good, line => line.Contains("pins/base.raw", StringComparison.Ordinal));
    }

    [QemuImgFact]
    public void The_cli_takes_a_pin_as_digest_and_path_and_refuses_a_bare_digest()
    {
        using var dir = new ScratchDirectory();
        (int bare, _, string bareError) = CliRunner.Run(dir.Path, "check", "--trust-digest", new string('a', 64), "x.qcow2");
        (int relative, _, string relativeError) = CliRunner.Run(dir.Path, "check", "--trust-digest", new string('a', 64) + "=", "x.qcow2");

        Assert.Equal(2, bare);
        Assert.Contains("SHA256=PATH", bareError, StringComparison.Ordinal);
        Assert.Equal(2, relative);
    }
}
