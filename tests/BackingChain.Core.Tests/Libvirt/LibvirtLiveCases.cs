using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using System.Xml.Linq;
using BackingChain.Interop;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Libvirt;

/// <summary>
/// The cases of <see cref="LibvirtLiveFormatTests"/> and <see cref="LibvirtLiveChainTests"/> (two classes, so that two
/// domains start at once), and how each is run. <c>domain</c>'s prediction held against a running libvirtd (libvirt 9.0, QEMU 7.2, TCG): each case makes its own
/// chain with qemu-img (byte-patched where qemu-img cannot make it), starts a one-disk domain paused, and compares the
/// prediction with what libvirt did: its refusal (the error, less the uid it names), or the chain of the live XML
/// (<c>virsh dumpxml</c>) layer by layer, file and format. Whether that chain is the images' is told by qemu-img
/// (<c>info --backing-chain</c>), never by this library.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static partial class LibvirtLiveCases
{
    /// <summary>Every case: a name, and how it makes its images and the disk element.</summary>
    private static readonly Dictionary<string, Func<LiveDirectory, string>> Builders = new()
    {
        // Every format libvirt knows that qemu-img can make, as the disk's own format.
        ["raw"] = d => Top(d, "raw", "raw"),
        ["qcow2"] = d => Top(d, "qcow2", "qcow2"),
        ["qcow"] = d => Top(d, "qcow", "qcow"),
        ["qed"] = d => Top(d, "qed", "qed"),
        ["vmdk"] = d => Top(d, "vmdk", "vmdk"),
        ["vpc"] = d => Top(d, "vpc", "vpc"),
        ["vdi"] = d => Top(d, "vdi", "vdi"),
        ["parallels as ploop"] = d => Top(d, "parallels", "ploop"),
        ["vhdx as vhd"] = d => Top(d, "vhdx", "vhd"),

        // qemu names libvirt does not know, as the disk's format: refused.
        ["vhdx as vhdx"] = d => Top(d, "vhdx", "vhdx"),
        ["luks as luks"] = d =>
        {
            Luks(d, "top.img");
            return Disk(d, "luks", "top.img");
        },

        // Each format as a recorded backing format of a qcow2.
        ["qcow2 over raw"] = d => Over(d, "raw"),
        ["qcow2 over qcow2"] = d => Over(d, "qcow2"),
        ["qcow2 over qcow"] = d => Over(d, "qcow"),
        ["qcow2 over qed"] = d => Over(d, "qed"),
        ["qcow2 over vmdk"] = d => Over(d, "vmdk"),
        ["qcow2 over vpc"] = d => Over(d, "vpc"),
        ["qcow2 over vdi"] = d => Over(d, "vdi"),
        ["qcow2 over parallels (probed)"] = d => Over(d, "parallels"),
        ["qcow2 over vhdx (probed as raw)"] = d => Over(d, "vhdx"),
        ["qcow2 over luks (probed, encrypted)"] = d =>
        {
            Luks(d, "base.img");
            Create(d, "-f", "qcow2", "-F", "luks", "-b", "base.img", "-u", "top.qcow2", "1M");
            return Disk(d, "qcow2", "top.qcow2");
        },
        ["qcow2 over a luks file recorded raw"] = d =>
        {
            Luks(d, "base.img");
            Create(d, "-f", "qcow2", "-F", "raw", "-b", "base.img", "-u", "top.qcow2", "1M");
            return Disk(d, "qcow2", "top.qcow2");
        },
        ["qcow2 recording the format 'none' (refused)"] = d =>
        {
            Create(d, "-f", "qcow", "base.img", "1M");
            Create(d, "-f", "qcow2", "-F", "qcow", "-b", "base.img", "top.qcow2");
            RecordFormat(d["top.qcow2"], "qcow", "none");
            return Disk(d, "qcow2", "top.qcow2");
        },
        ["three qcow2 and raw"] = d =>
        {
            Chain3(d);
            return Disk(d, "qcow2", "top.qcow2");
        },

        // Formats that record no backing format: libvirt probes, and refuses a probed image that names a backing file.
        ["qcow over qcow2 (probed)"] = d => Unrecorded(d, "qcow", deep: false),
        ["qcow over qcow2 over raw (refused)"] = d => Unrecorded(d, "qcow", deep: true),
        ["qed over qcow2 (probed)"] = d => Unrecorded(d, "qed", deep: false),
        ["qed over qcow2 over raw (probe accepted)"] = d => Unrecorded(d, "qed", deep: true),
        ["vmdk over vmdk (probed)"] = d =>
        {
            Create(d, "-f", "vmdk", "base.vmdk", "1M");
            Create(d, "-f", "vmdk", "-F", "vmdk", "-b", "base.vmdk", "top.vmdk");
            return Disk(d, "vmdk", "top.vmdk");
        },
        ["vmdk over vmdk over vmdk (refused)"] = d =>
        {
            Create(d, "-f", "vmdk", "base.vmdk", "1M");
            Create(d, "-f", "vmdk", "-F", "vmdk", "-b", "base.vmdk", "mid.vmdk");
            Create(d, "-f", "vmdk", "-F", "vmdk", "-b", "mid.vmdk", "top.vmdk");
            return Disk(d, "vmdk", "top.vmdk");
        },
        ["vmdk over a raw parent (probed as raw)"] = d =>
        {
            Create(d, "-f", "vmdk", "parent.vmdk", "1M");
            Create(d, "-f", "vmdk", "-F", "vmdk", "-b", "parent.vmdk", "top.vmdk");
            File.Delete(d["parent.vmdk"]);
            Create(d, "-f", "raw", "parent.vmdk", "1M");
            return Disk(d, "vmdk", "top.vmdk");
        },

        // libvirt reads the first 0x8200 bytes: a backing name ending there is read, one byte further is not.
        ["backing name ends at the bound"] = d => FarName(d, 0x8200),
        ["backing name ends past the bound"] = d => FarName(d, 0x8200 + 1),

        // qcow2 external data files: libvirt 9.0 does not pass them to qemu.
        ["data file, relative name"] = d =>
        {
            Create(d, "-f", "qcow2", "-o", "data_file=data.raw", "top.qcow2", "1M");
            return Disk(d, "qcow2", "top.qcow2");
        },
        ["data file, absolute name qemu's user may open"] = d =>
        {
            Create(d, "-f", "qcow2", "-o", $"data_file={d["data.raw"]}", "top.qcow2", "1M");
            File.SetUnixFileMode(d["data.raw"], (UnixFileMode)Convert.ToInt32("666", 8));
            return Disk(d, "qcow2", "top.qcow2");
        },
        ["data file, absolute name qemu's user may not open"] = d =>
        {
            Create(d, "-f", "qcow2", "-o", $"data_file={d["data.raw"]}", "top.qcow2", "1M");
            File.SetUnixFileMode(d["data.raw"], (UnixFileMode)Convert.ToInt32("600", 8));
            return Disk(d, "qcow2", "top.qcow2");
        },

        // Missing files.
        ["missing backing file"] = d =>
        {
            Create(d, "-f", "qcow2", "-F", "raw", "-b", "gone.raw", "-u", "top.qcow2", "1M");
            return Disk(d, "qcow2", "top.qcow2");
        },
        ["missing disk"] = d => Disk(d, "qcow2", "nothing.qcow2"),

        // The XML spells out part of the chain, or all of it.
        ["first backing given, no terminator"] = d =>
        {
            Chain3(d);
            return Disk(d, "qcow2", "top.qcow2", $"<backingStore type='file'><format type='qcow2'/><source file='{d["mid.qcow2"]}'/></backingStore>");
        },
        ["first backing given over an unrecorded format"] = d =>
        {
            Unrecorded(d, "qcow", deep: true);
            return Disk(d, "qcow", "top.img", $"<backingStore type='file'><format type='qcow2'/><source file='{d["mid.qcow2"]}'/></backingStore>");
        },
        ["whole chain given"] = d =>
        {
            Chain3(d);
            return Disk(d, "qcow2", "top.qcow2", $"<backingStore type='file'><format type='qcow2'/><source file='{d["mid.qcow2"]}'/><backingStore type='file'><format type='raw'/><source file='{d["base.raw"]}'/><backingStore/></backingStore></backingStore>");
        },
    };

    /// <summary>The first or the second half of the cases, in the order above.</summary>
    public static TheoryData<string> Half(int half)
    {
        string[] names = [.. Builders.Keys];
        int middle = names.Length / 2;
        return [.. half == 0 ? names[..middle] : names[middle..]];
    }

    public static async Task RunAsync(string name)
    {
        using var dir = new LiveDirectory();
        string disk = Builders[name](dir);
        string domainName = "bc-test-" + Guid.NewGuid().ToString("N")[..12];
        string domain = $"<domain type='qemu'><name>{domainName}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator>{disk}</devices></domain>";
        File.WriteAllText(dir["domain.xml"], domain);

        LibvirtPrediction predicted;
        using (var stream = new MemoryStream(Encoding.UTF8.GetBytes(domain)))
        {
            // The prediction reads only what the walk opened; trusting the case's directory lets it open every layer.
            var options = new ImageChainResolverOptions { Policy = new TrustPolicy { TrustedRoots = [dir.Path] } };
            predicted = Assert.Single(await LibvirtDomainReader.ReadAsync(stream, options)).Prediction;
        }

        // qemu-img reads the images before qemu locks them.
        List<(string Filename, string Format, bool DataFile)>? images = ImagesChain(dir, disk);
        ProcessResult created = LibvirtDaemon.Virsh("create", dir["domain.xml"], "--paused");
        try
        {
            if (created.ExitCode != 0)
            {
                string error = WithoutUid().Replace(created.StandardError, "");
                Assert.True(predicted.Outcome == LibvirtOutcome.Refused, $"libvirt refused: {error}\npredicted: {predicted}");
                if (predicted.Reason!.StartsWith("qemu cannot open the data file", StringComparison.Ordinal))
                {
                    // qemu's own words: it could not open the data file libvirt did not pass.
                    Assert.Contains("Could not open", error, StringComparison.Ordinal);
                    Assert.Contains("data.raw", error, StringComparison.Ordinal);
                }
                else
                {
                    Assert.Contains(predicted.Reason, error, StringComparison.Ordinal);
                }

                return;
            }

            Assert.True(predicted.Outcome != LibvirtOutcome.Refused, $"libvirt started the domain; predicted: {predicted}");
            (List<(string Source, string Format)> live, bool terminated) = LiveChain(LibvirtDaemon.Virsh("dumpxml", domainName).Require("virsh dumpxml"));
            Assert.Equal(live, predicted.Layers.Select(l => (l.Source, l.Format)).ToList());
            Assert.Equal(terminated, predicted.IsTerminated);

            // Whether the live chain is the images' is qemu-img's to say.
            bool same = images is not null && images.Count == live.Count
                && images.Zip(live).All(p => p.First.Filename == p.Second.Source && p.First.Format == QemuName(p.Second.Format) && !p.First.DataFile);
            Assert.True((same ? LibvirtOutcome.Starts : LibvirtOutcome.StartsWithOtherChain) == predicted.Outcome, $"live chain {string.Join(" <- ", live)}; qemu-img agrees: {same}; predicted: {predicted} {string.Join("; ", predicted.Findings)}");
        }
        finally
        {
            if (created.ExitCode == 0)
            {
                LibvirtDaemon.Virsh("destroy", domainName);
            }
        }
    }

    /// <summary>The chain of the first disk of a live domain XML: each layer's file and format, and whether an empty <c>&lt;backingStore/&gt;</c> ends it.</summary>
    private static (List<(string, string)> Layers, bool Terminated) LiveChain(string xml)
    {
        XElement disk = XDocument.Parse(xml).Descendants("disk").First();
        var layers = new List<(string, string)>
        {
            ((string)disk.Element("source")!.Attribute("file")!, (string)disk.Element("driver")!.Attribute("type")!),
        };
        XElement? store = disk.Element("backingStore");
        while (store is not null && store.HasElements)
        {
            layers.Add(((string)store.Element("source")!.Attribute("file")!, (string)store.Element("format")!.Attribute("type")!));
            store = store.Element("backingStore");
        }

        return (layers, store is not null);
    }

    /// <summary>The chain qemu-img reads from the disk's source with the disk's format (files, formats, whether a layer has a data file), or <see langword="null"/> when it cannot.</summary>
    private static List<(string, string, bool)>? ImagesChain(LiveDirectory dir, string disk)
    {
        XElement element = XElement.Parse(disk);
        string source = (string)element.Element("source")!.Attribute("file")!;
        string format = QemuName((string)element.Element("driver")!.Attribute("type")!);
        (int exit, string output, _) = QemuImg.TryRun(dir.Path, "info", "--output=json", "--backing-chain", "-f", format, source);
        return exit != 0 ? null : JsonNode.Parse(output)!.AsArray()
            .Select(image => ((string)image!["filename"]!, (string)image["format"]!, image["format-specific"]?["data"]?["data-file"] is not null))
            .ToList();
    }

    /// <summary>qemu's name for a libvirt format name.</summary>
    private static string QemuName(string libvirt) => libvirt switch { "ploop" => "parallels", "vhd" => "vhdx", string f => f };

    private static string Top(LiveDirectory d, string qemuFormat, string libvirtFormat)
    {
        Create(d, "-f", qemuFormat, "top.img", "1M");
        return Disk(d, libvirtFormat, "top.img");
    }

    private static string Over(LiveDirectory d, string baseFormat)
    {
        Create(d, "-f", baseFormat, "base.img", "1M");
        Create(d, "-f", "qcow2", "-F", baseFormat, "-b", "base.img", "top.qcow2");
        return Disk(d, "qcow2", "top.qcow2");
    }

    /// <summary>top.img (a format that records no backing format) ← mid.qcow2, itself over base.raw when <paramref name="deep"/>.</summary>
    private static string Unrecorded(LiveDirectory d, string topFormat, bool deep)
    {
        if (deep)
        {
            Create(d, "-f", "raw", "base.raw", "1M");
            Create(d, "-f", "qcow2", "-F", "raw", "-b", "base.raw", "mid.qcow2");
        }
        else
        {
            Create(d, "-f", "qcow2", "mid.qcow2", "1M");
        }

        Create(d, "-f", topFormat, "-F", "qcow2", "-b", "mid.qcow2", "top.img");
        Assert.Null(QemuImg.Info(d.Path, d["top.img"])["backing-filename-format"]);
        return Disk(d, topFormat, "top.img");
    }

    private static void Chain3(LiveDirectory d)
    {
        Create(d, "-f", "raw", "base.raw", "1M");
        Create(d, "-f", "qcow2", "-F", "raw", "-b", "base.raw", "mid.qcow2");
        Create(d, "-f", "qcow2", "-F", "qcow2", "-b", "mid.qcow2", "top.qcow2");
    }

    /// <summary>A qcow2 whose backing name is moved to end at byte <paramref name="end"/> (within cluster 0, where qemu reads it).</summary>
    private static string FarName(LiveDirectory d, int end)
    {
        Create(d, "-f", "raw", "base.raw", "1M");
        Create(d, "-f", "qcow2", "-F", "raw", "-b", "base.raw", "top.qcow2");
        byte[] image = File.ReadAllBytes(d["top.qcow2"]);
        int offset = (int)BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan(8));
        int length = (int)BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(16));
        byte[] name = image.AsSpan(offset, length).ToArray();
        image.AsSpan(offset, length).Clear();
        name.CopyTo(image, end - length);
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(8), (ulong)(end - length));
        File.WriteAllBytes(d["top.qcow2"], image);
        Assert.Equal(d["base.raw"], (string)QemuImg.Info(d.Path, d["top.qcow2"], backingChain: true).AsArray()[1]!["filename"]!);
        return Disk(d, "qcow2", "top.qcow2");
    }

    /// <summary>Rewrites the backing format extension's name (qemu-img refuses to write a name it has no driver for).</summary>
    private static void RecordFormat(string file, string from, string to)
    {
        byte[] image = File.ReadAllBytes(file);
        int at = image.AsSpan(0, 4096).IndexOf((ReadOnlySpan<byte>)[0xE2, 0x79, 0x2A, 0xCA]);
        Assert.Equal((uint)from.Length, BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(at + 4)));
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(at + 4), (uint)to.Length);
        image.AsSpan(at + 8, 8).Clear();
        Encoding.ASCII.GetBytes(to).CopyTo(image, at + 8);
        File.WriteAllBytes(file, image);
        Assert.Equal(to, (string)QemuImg.Info(Path.GetDirectoryName(file)!, file)["backing-filename-format"]!);
    }

    private static void Luks(LiveDirectory d, string name) =>
        Create(d, "--object", "secret,id=s0,data=secret", "-f", "luks", "-o", "key-secret=s0,iter-time=10", name, "1M");

    private static void Create(LiveDirectory d, params string[] arguments) => QemuImg.Run(d.Path, ["create", "-q", .. arguments]);

    private static string Disk(LiveDirectory d, string format, string file, string inner = "") =>
        $"<disk type='file' device='disk'><driver name='qemu' type='{format}'/><source file='{d[file]}'/>{inner}<target dev='vda' bus='virtio'/></disk>";

    [GeneratedRegex(@" \(as uid:\d+, gid:\d+\)")]
    private static partial Regex WithoutUid();

    /// <summary>A fresh directory under libvirt's image directory, which libvirt's qemu user may enter; deleted afterwards.</summary>
    private sealed class LiveDirectory : IDisposable
    {
        public LiveDirectory()
        {
            Path = System.IO.Path.Combine(LibvirtDaemon.ImageDirectory, "bc-tests-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Path);
            File.SetUnixFileMode(Path, (UnixFileMode)Convert.ToInt32("755", 8));
        }

        public string Path { get; }

        public string this[string relative] => System.IO.Path.Combine(Path, relative);

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
