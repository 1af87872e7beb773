using System;
using System.IO;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Editing;

/// <summary>
/// The built CLI's <c>rebase</c>, <c>check --fix</c> and <c>relocate</c>, for qcow2 and QED images made by qemu-img,
/// with the kernel failing the N-th header write or flush on the image with EIO, or the process killed (SIGKILL) on
/// entering it — for every N, injected by <c>strace -P IMAGE -e inject=…:when=N</c>. The .NET runtime writes with
/// <c>pwrite64</c> and the editor flushes with <c>fsync</c>. After each run, as qemu-img reads the image, it holds the
/// old (name, format) or the one the complete run writes, never a name without its format, and
/// <c>qemu-img check</c> finds no error; a failed call ends the CLI with a nonzero exit and no crash.
/// </summary>
public sealed class StraceEditFaultTests
{
    public static TheoryData<string, string, string, string> Cases()
    {
        var cases = new TheoryData<string, string, string, string>();
        string[] commands = ["rebase", "rebase-no-format", "fix", "relocate"];
        foreach (string command in commands)
        {
            foreach (string format in (string[])["qcow2", "qed"])
            {
                foreach (string syscall in (string[])["pwrite64", "fsync"])
                {
                    foreach (string fault in (string[])["error=EIO", "signal=KILL"])
                    {
                        cases.Add(command, format, syscall, fault);
                    }
                }
            }
        }

        return cases;
    }

    [StraceTheory]
    [MemberData(nameof(Cases))]
    public void Failing_or_killing_each_write_and_flush_in_turn_leaves_the_old_or_the_new_state(string command, string format, string syscall, string fault)
    {
        using var dir = new ScratchDirectory();
        (string image, string[] arguments) = Prepare(dir, command, format);
        string original = dir[image] + ".original";
        File.Copy(dir[image], original);
        (string? Name, string? Format) old = InterruptedRebaseTests.Backing(dir, image, format);

        // A run without a fault: how many times the CLI makes the call on the image, and the state it ends in.
        (int exit, string log, string errors) = StraceCli.Run(dir.Path, image, syscall, null, arguments);
        Assert.True(exit == 0, errors);
        int calls = StraceCli.Calls(log, syscall);
        Assert.True(calls >= 1, log);
        (string? Name, string? Format) done = InterruptedRebaseTests.Backing(dir, image, format);
        Assert.NotEqual(old, done);
        Assert.NotNull(done.Format);

        for (int n = 1; n <= calls; n++)
        {
            File.Copy(original, dir[image], overwrite: true);
            (exit, log, errors) = StraceCli.Run(dir.Path, image, syscall, $"{fault}:when={n}", arguments);

            // An error is shown as injected; a kill on entering the call stops the process before the call is made.
            Assert.Contains(fault == "signal=KILL" ? "killed by SIGKILL" : "(INJECTED)", log, StringComparison.Ordinal);
            Assert.True(exit != 0, $"{syscall} #{n} ({fault}): exit 0");
            Assert.DoesNotContain("Unhandled exception", errors, StringComparison.Ordinal);
            (string? Name, string? Format) state = InterruptedRebaseTests.Backing(dir, image, format);
            Assert.True(state == old || state == done, $"{command}: {syscall} #{n} of {calls} ({fault}) left ({state.Name}, {state.Format}); old ({old.Name}, {old.Format}), new ({done.Name}, {done.Format})");
            InterruptedRebaseTests.AssertCleanAlone(dir, image, format);
        }
    }

    /// <summary>Makes the images for <paramref name="command"/> with qemu-img; returns the image the command changes and the CLI arguments.</summary>
    private static (string Image, string[] Arguments) Prepare(ScratchDirectory dir, string command, string format)
    {
        string top = "top." + format;
        switch (command)
        {
            case "rebase":
                QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-u", "-b", "old.raw", "-F", "raw", top, "1M");
                return (top, ["rebase", "-u", "-f", format, "-b", "a-longer-new-backing-name.raw", "-F", "raw", top]);

            case "rebase-no-format":
                // The old name has no recorded format; the new one gains it (qcow2: the area shifts).
                QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-u", "-b", "old.raw", "-F", "raw", top, "1M");
                ImagePatches.DropBackingFormat(dir[top]);
                return (top, ["rebase", "-u", "-f", format, "-b", "new.raw", "-F", "raw", top]);

            case "fix":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
                QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-b", "base.raw", "-F", "raw", top);
                ImagePatches.DropBackingFormat(dir[top]);
                return (top, ["check", "-f", format, "--fix", top]);

            default:
                Directory.CreateDirectory(dir["old/base"]);
                Directory.CreateDirectory(dir["old/vm"]);
                QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "old/base/base.raw", "1M");
                QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-u", "-b", dir["old/base/base.raw"], "-F", "raw", "old/vm/" + top, "1M");
                Directory.Move(dir["old"], dir["new"]);
                return ("new/vm/" + top, ["relocate", "--from", "old", "--to", "new", "new/vm/" + top]);
        }
    }
}
