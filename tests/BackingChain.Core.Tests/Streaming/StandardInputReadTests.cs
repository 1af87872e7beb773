using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Streaming;

/// <summary>The CLI reads an image on standard input in large blocks: each read is a system call on the whole upload.</summary>
public sealed partial class StandardInputReadTests
{
    [StraceFact]
    public void Check_reads_standard_input_in_blocks_of_at_least_half_a_mebibyte()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "upload.raw", "16M");
        string log = dir["stdin.strace"];

        ProcessResult result = ProcessRunner.Run(
            "strace",
            ["-f", "-qq", "-o", log, "-e", "trace=read",
             "dotnet", Path.Combine(AppContext.BaseDirectory, "backing-chain.dll"), "check", "-"],
            dir.Path,
            standardInputFile: dir["upload.raw"]);

        Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
        int[] asked = File.ReadAllLines(log)
            .Select(line => ReadOfStandardInput().Match(line))
            .Where(match => match.Success)
            .Select(match => int.Parse(match.Groups["count"].Value, System.Globalization.CultureInfo.InvariantCulture))
            .ToArray();
        Assert.NotEmpty(asked);
        Assert.True(asked.Min() >= 512 * 1024, $"reads of standard input asked for: {string.Join(", ", asked.Distinct())}");

        // A pipe hands over at most its capacity (64 KiB by default) per read, so the count is bounded by the pipe,
        // not by the CLI: 16 MiB takes at least 256 reads, and the CLI adds none of its own.
        Assert.True(asked.Length <= 16 * 1024 * 1024 / (64 * 1024) + 8, $"{asked.Length} reads of standard input");
    }

    // strace prints read(0, "..."..., COUNT) = RESULT; the count asked for is the last argument.
    [GeneratedRegex(@"read\(0, .*, (?<count>[0-9]+)\) = ")]
    private static partial Regex ReadOfStandardInput();
}
