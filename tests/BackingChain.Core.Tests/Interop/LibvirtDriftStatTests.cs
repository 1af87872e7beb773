using System;
using System.IO;
using System.Linq;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Interop;

/// <summary>
/// The drift check of <c>backing-chain domain</c> never hands a refused name to the file system: neither a name an
/// image records that the gate would refuse, nor an XML layer the walk refused. Seen with
/// <c>strace -f -e trace=%file</c> on the CLI: no file syscall of any kind carries either name.
/// </summary>
public sealed class LibvirtDriftStatTests
{
    [StraceFact]
    public void Refused_names_are_never_looked_up()
    {
        using var dir = new ScratchDirectory();
        string root = dir["root"];
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(dir["outside"]);
        QemuImg.Run(dir["outside"], "create", "-q", "-f", "raw", "recorded.raw", "1M");
        QemuImg.Run(dir["outside"], "create", "-q", "-f", "raw", "spelled.raw", "1M");
        QemuImg.Run(root, "create", "-q", "-f", "raw", "base.raw", "1M");

        // Both overlays record a backing file outside the root, so the recorded name is one the gate refuses.
        QemuImg.Run(root, "create", "-q", "-f", "qcow2", "-b", dir["outside/recorded.raw"], "-F", "raw", "a.qcow2");
        QemuImg.Run(root, "create", "-q", "-f", "qcow2", "-b", dir["outside/recorded.raw"], "-F", "raw", "b.qcow2");

        // vda: the XML puts a trusted base below (opened); vdb: a file outside the root (refused by the walk).
        string disks = Disk("vda", Path.Combine(root, "a.qcow2"), Path.Combine(root, "base.raw"))
            + Disk("vdb", Path.Combine(root, "b.qcow2"), dir["outside/spelled.raw"]);
        File.WriteAllText(dir["domain.xml"], $"<domain type='kvm'><name>g</name><memory>65536</memory><os><type>hvm</type></os><devices>{disks}</devices></domain>");
        string log = dir["domain.strace"];

        ProcessResult result = ProcessRunner.Run(
            "strace",
            ["-f", "-qq", "-o", log, "-e", "trace=%file", "dotnet", Path.Combine(AppContext.BaseDirectory, "backing-chain.dll"),
             "domain", "--untrusted", "--trust-root", root, "--output", "json", dir["domain.xml"]],
            dir.Path);

        string[] traced = File.ReadAllLines(log);
        Assert.True(result.ExitCode == 1, result.StandardOutput + result.StandardError);

        // The walk did read what it was allowed to: the trusted base was opened.
        Assert.Contains(traced, line => line.Contains(Path.Combine(root, "base.raw"), StringComparison.Ordinal));
        string[] touched = traced.Where(line => line.Contains("outside/", StringComparison.Ordinal)).ToArray();
        Assert.True(touched.Length == 0, string.Join('\n', touched));

        // And the drift was still found, from the names alone.
        Assert.Contains("backing-name-mismatch", result.StandardOutput, StringComparison.Ordinal);
    }

    private static string Disk(string target, string top, string below) =>
        $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{top}'/>"
        + $"<backingStore type='file'><format type='raw'/><source file='{below}'/><backingStore/></backingStore><target dev='{target}' bus='virtio'/></disk>";
}
