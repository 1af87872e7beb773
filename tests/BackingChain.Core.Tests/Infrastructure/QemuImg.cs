using System;
using System.IO;
using System.Text.Json.Nodes;

namespace BackingChain.Tests.Infrastructure;

/// <summary>Runs the oracle, Debian's qemu-img 7.2, in a test's scratch directory.</summary>
internal static class QemuImg
{
    private static readonly Lazy<string?> Location = new(() =>
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            string candidate = Path.Combine(dir, "qemu-img");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    });

    public static bool IsAvailable => Location.Value is not null;

    /// <summary>The reason tests that need the oracle are skipped, shown in the test report.</summary>
    public const string MissingReason = "qemu-img is not installed (apt-get install qemu-utils); .ci/run installs it";

    /// <summary>Runs qemu-img with <paramref name="arguments"/> in <paramref name="workingDirectory"/>; throws on a non-zero exit.</summary>
    public static string Run(string workingDirectory, params string[] arguments)
    {
        (int exit, string stdout, string stderr) = TryRun(workingDirectory, arguments);

        // qemu-img calibrates LUKS PBKDF2 iterations by CPU time over iter-time; on a loaded machine a short
        // iter-time can fail with "Unable to get accurate CPU usage". That is the oracle's problem, not the
        // image's: try again a few times.
        for (int attempt = 0; exit != 0 && stderr.Contains("Unable to get accurate CPU usage", StringComparison.Ordinal) && attempt < 5; attempt++)
        {
            System.Threading.Thread.Sleep(100 * (attempt + 1));
            (exit, stdout, stderr) = TryRun(workingDirectory, arguments);
        }

        if (exit != 0)
        {
            throw new InvalidOperationException($"qemu-img {string.Join(' ', arguments)} failed ({exit}): {stderr}");
        }

        return stdout;
    }

    public static (int ExitCode, string StandardOutput, string StandardError) TryRun(string workingDirectory, params string[] arguments)
    {
        ProcessResult result = ProcessRunner.Run(Location.Value ?? "qemu-img", arguments, workingDirectory);
        return (result.ExitCode, result.StandardOutput, result.StandardError);
    }

    /// <summary><c>qemu-img info --output=json [--backing-chain] [-f FMT] FILE</c>, parsed.</summary>
    public static JsonNode Info(string workingDirectory, string file, bool backingChain = false, string? format = null)
    {
        var args = new System.Collections.Generic.List<string> { "info", "--output=json" };
        if (backingChain)
        {
            args.Add("--backing-chain");
        }

        if (format is not null)
        {
            args.Add("-f");
            args.Add(format);
        }

        args.Add(file);
        return JsonNode.Parse(Run(workingDirectory, [.. args]))!;
    }
}
