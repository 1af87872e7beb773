using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Editing;

/// <summary>
/// The built CLI's <c>rebase</c> with the kernel failing its N-th header write (or flush) with EIO, for every N,
/// injected by <c>strace -e inject=…:error=EIO:when=N</c> on the image's file descriptor only. The .NET runtime
/// writes with <c>pwrite64</c> and flushes with <c>fsync</c> (seen with strace). Each run must end with exit code 1
/// and a one-line error, no crash, and leave, as qemu-img reads it, the old (name, format), the new one, or one of
/// the two names with no recorded format.
/// </summary>
public sealed class StraceRebaseFaultTests
{
    private static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "backing-chain.dll");

    public static TheoryData<string, string, string, string, string> Cases => new()
    {
        // format, create options, new name, new format, syscall failed
        { "qcow2", "backing_file=old.raw,backing_fmt=raw", "a-longer-new-backing-name.qcow2", "qcow2", "pwrite64" },
        { "qcow2", "backing_file=old.raw,backing_fmt=raw", "a-longer-new-backing-name.qcow2", "qcow2", "fsync" },
        { "qed", "backing_file=old.raw,backing_fmt=raw", "a-longer-new-backing-name.raw", "raw", "pwrite64" },
        { "qed", "backing_file=old.raw,backing_fmt=raw", "n.qcow2", "qcow2", "fsync" },
    };

    [StraceTheory]
    [MemberData(nameof(Cases))]
    public void Failing_each_write_of_the_cli_rebase_in_turn_leaves_an_allowed_state(string format, string options, string name, string newFormat, string syscall)
    {
        using var dir = new ScratchDirectory();
        string original = "original." + format;
        QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-u", "-o", options, original, "1M");
        (string? Name, string? Format) old = Backing(dir, original, format);

        // A run without a fault: how many times the CLI makes the call on the image, and the state it ends in.
        string complete = "complete." + format;
        File.Copy(dir[original], dir[complete]);
        (int exit, string log, string errors) = RunTraced(dir, complete, syscall, name, newFormat, failAt: null);
        Assert.True(exit == 0, errors);
        int calls = log.Split('\n').Count(l => l.Contains(syscall + "(", StringComparison.Ordinal));
        Assert.True(calls >= 1, log);
        (string? Name, string? Format) done = Backing(dir, complete, format);
        Assert.Equal(name, done.Name);

        for (int n = 1; n <= calls; n++)
        {
            string image = $"fail-{n}.{format}";
            File.Copy(dir[original], dir[image]);
            (exit, log, errors) = RunTraced(dir, image, syscall, name, newFormat, failAt: n);

            Assert.Contains("(INJECTED)", log, StringComparison.Ordinal);
            Assert.True(exit == 1, $"{syscall} #{n}: exit {exit}: {errors}");
            // A warning the CLI gives before it writes (QED cannot record qcow2) is not the error.
            string[] lines = errors.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("backing-chain: warning: ", StringComparison.Ordinal)).ToArray();
            Assert.True(lines.Length == 1 && lines[0].StartsWith("backing-chain: ", StringComparison.Ordinal), $"{syscall} #{n}: {errors}");

            (string? Name, string? Format) state = Backing(dir, image, format);
            bool allowed = state == old
                || state == done
                || (state.Format is null && (state.Name == old.Name || state.Name == name) && state.Name is not null);
            Assert.True(allowed, $"{syscall} #{n} of {calls} failed and left ({state.Name}, {state.Format}); old ({old.Name}, {old.Format}), new ({done.Name}, {done.Format})");
        }
    }

    /// <summary>Runs <c>backing-chain rebase -u</c> under strace, tracing (and, with <paramref name="failAt"/>, failing) only calls on the image.</summary>
    private static (int ExitCode, string Log, string Errors) RunTraced(ScratchDirectory dir, string image, string syscall, string name, string newFormat, int? failAt)
    {
        string log = dir[image + ".strace"];
        var arguments = new List<string> { "-f", "-qq", "-o", log, "-P", image, "-e", $"trace={syscall}" };
        if (failAt is int n)
        {
            arguments.AddRange(["-e", $"inject={syscall}:error=EIO:when={n}"]);
        }

        arguments.AddRange(["dotnet", Cli, "rebase", "-u", "-b", name, "-F", newFormat, image]);
        (int exit, _, string stderr) = Run(dir.Path, "strace", arguments);

        // strace's own notes ("Requested path … resolved into …") share the stream; the CLI's lines are the rest.
        string errors = string.Join('\n', stderr.Split('\n').Where(l => l.Length > 0 && !l.StartsWith("strace: ", StringComparison.Ordinal)));
        return (exit, File.ReadAllText(log), errors);
    }

    private static (string? Name, string? Format) Backing(ScratchDirectory dir, string image, string format)
    {
        JsonNode info = QemuImg.Info(dir.Path, image, format: format);
        return ((string?)info["backing-filename"], (string?)info["backing-filename-format"]);
    }

    private static (int ExitCode, string StandardOutput, string StandardError) Run(string workingDirectory, string program, IEnumerable<string> arguments)
    {
        ProcessResult result = ProcessRunner.Run(program, arguments, workingDirectory);
        return (result.ExitCode, result.StandardOutput, result.StandardError);
    }
}
