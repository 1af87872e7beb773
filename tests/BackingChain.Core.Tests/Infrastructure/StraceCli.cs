using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace BackingChain.Tests.Infrastructure;

/// <summary>Runs the built CLI under strace, tracing (and optionally tampering with) one system call on one file only.</summary>
internal static class StraceCli
{
    private static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "backing-chain.dll");

    /// <summary>
    /// Runs <c>backing-chain ARGUMENTS</c> in <paramref name="workingDirectory"/> with <c>strace -P
    /// <paramref name="traced"/> -e trace=<paramref name="syscall"/></c>; with <paramref name="inject"/> (such as
    /// <c>error=EIO:when=3</c> or <c>signal=KILL:when=3</c>), that call on that file is tampered with.
    /// </summary>
    /// <returns>The exit code, the trace, and the CLI's standard error without strace's own notes.</returns>
    public static (int ExitCode, string Log, string Errors) Run(string workingDirectory, string traced, string syscall, string? inject, params string[] arguments)
    {
        string log = Path.Combine(workingDirectory, Path.GetFileName(traced) + "." + Guid.NewGuid().ToString("N") + ".strace");
        var strace = new List<string> { "-f", "-qq", "-o", log, "-P", traced, "-e", $"trace={syscall}" };
        if (inject is not null)
        {
            strace.AddRange(["-e", $"inject={syscall}:{inject}"]);
        }

        strace.AddRange(["dotnet", Cli, .. arguments]);
        ProcessResult result = ProcessRunner.Run("strace", strace, workingDirectory);

        // strace's own notes ("Requested path … resolved into …") share the stream; the CLI's lines are the rest.
        string errors = string.Join('\n', result.StandardError.Split('\n').Where(l => l.Length > 0 && !l.StartsWith("strace: ", StringComparison.Ordinal)));
        string trace = File.Exists(log) ? File.ReadAllText(log) : string.Empty;
        File.Delete(log);
        return (result.ExitCode, trace, errors);
    }

    /// <summary>How many times the trace shows <paramref name="syscall"/> made.</summary>
    public static int Calls(string log, string syscall) => log.Split('\n').Count(l => l.Contains(syscall + "(", StringComparison.Ordinal));
}
