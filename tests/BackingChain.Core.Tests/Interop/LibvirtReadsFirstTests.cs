using System;
using System.IO;
using System.Linq;
using System.Text;
using BackingChain.Interop;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;

namespace BackingChain.Tests.Interop;

/// <summary>
/// A document that says one thing twice is judged as libvirt reads it (the first <c>&lt;source&gt;</c>,
/// <c>&lt;driver&gt;</c>, <c>&lt;format&gt;</c>, <c>&lt;backingStore&gt;</c>; <c>dev=</c> for a block disk), and what
/// libvirt ignores is drift. Each case is three documents: the hostile one, the one libvirt reads (the ignored part
/// removed, valid against libvirt's schema) and the decoy alone; the hostile one must be judged as the second, and the
/// decoy alone must be safe, so the case can tell the two readings apart. The images come from qemu-img: evil.qcow2
/// in the trusted root names a file outside it.
/// </summary>
public sealed class LibvirtReadsFirstTests
{
    public static TheoryData<string> Cases => ["source", "driver", "format", "backingStore", "block-dev", "dir-on-block"];

    [LibvirtSchemaTheory]
    [MemberData(nameof(Cases))]
    public void A_duplicate_is_read_as_libvirt_reads_it_and_reported(string which)
    {
        using var dir = new ScratchDirectory();
        string root = MakeImages(dir);
        (string hostile, string libvirt, string decoy) = Documents(which, root);
        (int valid, string validation) = VirtXmlValidate.ValidateDisk(dir.Path, libvirt);
        Assert.True(valid == 0, validation + "\n" + libvirt);
        var policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [root] };

        LibvirtDiskChain asRead = Read(hostile, policy);
        LibvirtDiskChain asLibvirt = Read(libvirt, policy);
        LibvirtDiskChain asDecoy = Read(decoy, policy);

        // The decoy alone is safe and libvirt's reading is not: the case separates the two readings.
        Assert.True(asDecoy.IsSafe, asDecoy.UnsafeReason);
        Assert.False(asLibvirt.IsSafe);

        // The hostile document is libvirt's chain, judged as such, and the ignored part is named.
        Assert.False(asRead.IsSafe);
        Assert.Equal(asLibvirt.Layers.Select(l => (l.Path, l.Format, l.SourceType)), asRead.Layers.Select(l => (l.Path, l.Format, l.SourceType)));
        Assert.Equal(asLibvirt.IsTerminated, asRead.IsTerminated);
        Assert.Equal(asLibvirt.Report.Layers.Select(l => (l.FileName, l.Format, l.Decision)), asRead.Report.Layers.Select(l => (l.FileName, l.Format, l.Decision)));
        Assert.Equal(asLibvirt.UnsafeReason, asRead.UnsafeReason);
        Assert.Contains(asRead.Drift, d => d.Kind == LibvirtDriftKind.IgnoredByLibvirt);
        Assert.DoesNotContain(asLibvirt.Drift, d => d.Kind == LibvirtDriftKind.IgnoredByLibvirt);
    }

    [LibvirtSchemaFact]
    public void The_cli_says_what_libvirt_ignores_and_exits_1()
    {
        using var dir = new ScratchDirectory();
        string root = MakeImages(dir);
        (string hostile, _, _) = Documents("source", root);
        File.WriteAllText(dir["twice.xml"], hostile);

        (int exit, string output, string error) = CliRunner.Run(dir.Path, "domain", "--untrusted", "--trust-root", root, dir["twice.xml"]);

        Assert.True(exit == 1, output + error);
        Assert.Contains("drift ignored-by-libvirt at [0]", output, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(root, "clean.qcow2"), output, StringComparison.Ordinal);
    }

    /// <summary>The hostile document, libvirt's reading of it, and the decoy libvirt ignores, as documents of their own.</summary>
    private static (string Hostile, string Libvirt, string Decoy) Documents(string which, string root)
    {
        string evil = Path.Combine(root, "evil.qcow2");
        string clean = Path.Combine(root, "clean.qcow2");
        string top = Path.Combine(root, "top.qcow2");
        const string Target = "<target dev='vda' bus='virtio'/>";
        string Disk(string type, string inner) => $"<disk type='{type}' device='disk'>{inner}{Target}</disk>";
        return which switch
        {
            // Two sources: libvirt opens evil.qcow2 and walks on to what it names.
            "source" => (
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{evil}'/><source file='{clean}'/>"),
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{evil}'/>"),
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{clean}'/>")),

            // Two drivers: libvirt reads evil.qcow2 as qcow2 (and follows its backing file), not as raw.
            "driver" => (
                Disk("file", $"<driver name='qemu' type='qcow2'/><driver name='qemu' type='raw'/><source file='{evil}'/>"),
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{evil}'/>"),
                Disk("file", $"<driver name='qemu' type='raw'/><source file='{clean}'/><backingStore/>")),

            // Two formats in a backing store: libvirt reads evil.qcow2 as qcow2 and walks on from its header.
            "format" => (
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{top}'/><backingStore type='file'><format type='qcow2'/><format type='raw'/><source file='{evil}'/></backingStore>"),
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{top}'/><backingStore type='file'><format type='qcow2'/><source file='{evil}'/></backingStore>"),
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{top}'/><backingStore type='file'><format type='raw'/><source file='{evil}'/><backingStore/></backingStore>")),

            // Two sibling backing stores: the first one is open, so libvirt walks on from evil.qcow2's header.
            "backingStore" => (
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{top}'/><backingStore type='file'><format type='qcow2'/><source file='{evil}'/></backingStore><backingStore/>"),
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{top}'/><backingStore type='file'><format type='qcow2'/><source file='{evil}'/></backingStore>"),
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{top}'/><backingStore/>")),

            // A block disk: libvirt reads dev=, never file=.
            "block-dev" => (
                Disk("block", $"<driver name='qemu' type='qcow2'/><source file='{clean}' dev='{evil}'/>"),
                Disk("block", $"<driver name='qemu' type='qcow2'/><source dev='{evil}'/>"),
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{clean}'/>")),

            // A dir= on a block backing store is not its path either.
            _ => (
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{top}'/><backingStore type='block'><format type='qcow2'/><source dir='{clean}' dev='{evil}'/></backingStore>"),
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{top}'/><backingStore type='block'><format type='qcow2'/><source dev='{evil}'/></backingStore>"),
                Disk("file", $"<driver name='qemu' type='qcow2'/><source file='{top}'/><backingStore/>")),
        };
    }

    /// <summary>
    /// root/clean.qcow2 (no backing file), root/evil.qcow2 (names ../outside/secret.raw, with its format), root/top.qcow2
    /// (names evil.qcow2 as qcow2), outside/secret.raw. Returns the root.
    /// </summary>
    private static string MakeImages(ScratchDirectory dir)
    {
        string root = dir["root"];
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(dir["outside"]);
        QemuImg.Run(dir["outside"], "create", "-q", "-f", "raw", "secret.raw", "1M");
        QemuImg.Run(root, "create", "-q", "-f", "qcow2", "clean.qcow2", "1M");
        QemuImg.Run(root, "create", "-q", "-f", "qcow2", "-b", dir["outside/secret.raw"], "-F", "raw", "evil.qcow2");
        QemuImg.Run(root, "create", "-q", "-f", "qcow2", "-b", "evil.qcow2", "-F", "qcow2", "top.qcow2");
        return root;
    }

    private static LibvirtDiskChain Read(string document, TrustPolicy policy) =>
        Assert.Single(LibvirtDomainReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(document)), policy));
}
