using System;
using System.IO;
using System.Linq;
using System.Text;
using BackingChain.Chain;
using BackingChain.Tests.Infrastructure;
using BackingChain.Walk;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// Images qemu-img cannot create (bochs, cloop, dmg, differencing VHD/VHDX), built byte by byte from the specs:
/// qemu-img's view where it can open them, and our references and chain.
/// </summary>
public sealed class ByteMadeImageTests
{
    public static TheoryData<string, string> Images => new()
    {
        { "bochs v2", "disk.bochs" },
        { "bochs v1", "disk1.bochs" },
        { "bochs odd size", "odd.bochs" },
        { "cloop", "disk.cloop" },
        { "cloop 32-bit wrap", "wrap.cloop" },
        { "dmg plist", "plist.dmg" },
        { "dmg resource fork", "rsrc.dmg" },
    };

    private static byte[] Build(string file) => file switch
    {
        "disk.bochs" => ImageBytes.Bochs(1024 * 1024, 256, 4096),
        "disk1.bochs" => ImageBytes.Bochs(2 * 1024 * 1024, 512, 4096, version: 0x00010000),
        "odd.bochs" => ImageBytes.Bochs(1000001, 250, 4096),
        "disk.cloop" => ImageBytes.Cloop(65536, 16),
        "wrap.cloop" => ImageBytes.Cloop(64 * 1024 * 1024, 65537),
        "plist.dmg" => ImageBytes.DmgWithPlist(2048),
        "rsrc.dmg" => ImageBytes.DmgWithResourceFork(4096),
        _ => throw new ArgumentException(file),
    };

    [QemuImgTheory]
    [MemberData(nameof(Images))]
    public void Info_matches_qemu_img(string label, string file)
    {
        _ = label;
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir[file], Build(file));
        string format = file.EndsWith(".bochs", StringComparison.Ordinal) ? "bochs" : file.EndsWith(".cloop", StringComparison.Ordinal) ? "cloop" : "dmg";

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, file, backingChain: false, format);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, file, backingChain: false);
        VhdFamilyConformanceTests.AssertSameProbe(dir.Path, file);
    }

    [QemuImgFact]
    public void Differencing_vhd_is_seen_by_qemu_without_parent_and_followed_by_us()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "-o", "subformat=dynamic", "parent.vhd", "1M");
        byte[] parent = File.ReadAllBytes(dir["parent.vhd"]);
        byte[] child = ImageBytes.VhdDifferencing(
            parent,
            Guid.NewGuid(),
            "parent.vhd",
            ("W2ru", Encoding.Unicode.GetBytes(@".\parent.vhd")),
            ("W2ku", Encoding.Unicode.GetBytes(@"C:\images\parent.vhd")),
            ("MacX", Encoding.UTF8.GetBytes("file://localhost" + dir["parent.vhd"].Replace(" ", "%20", StringComparison.Ordinal))));
        File.WriteAllBytes(dir["child.vhd"], child);

        // qemu ignores VHD parents: no backing fields, and the JSON (which shows no parent locators) is identical.
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "child.vhd", backingChain: false);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "child.vhd", backingChain: false, "vpc");
        Assert.Null(QemuImg.Info(dir.Path, "child.vhd")["backing-filename"]);

        ImageChain chain = new ImageChainResolver().Resolve(dir["child.vhd"], ImageFormat.Vpc);
        ChainLayer top = chain.Layers[0];
        Assert.All(top.References, r => Assert.Equal(ReferenceRole.BackingFile, r.Role));
        Assert.Equal(dir["parent.vhd"], top.References[0].StoredName); // the MacX path: openable here, so first
        Assert.Contains(top.References, r => r.StoredName == @".\parent.vhd" && r.Kind == ReferenceKind.WindowsPath);
        Assert.Contains(top.References, r => r.StoredName == @"C:\images\parent.vhd" && r.Kind == ReferenceKind.WindowsPath);
        Assert.Contains(top.References, r => r.StoredName == "parent.vhd" && r.Kind == ReferenceKind.RelativePath);
        Assert.Equal(ChainEnding.Complete, chain.Ending);
        Assert.Equal(2, chain.Layers.Length);
        Assert.Equal(ImageFormat.Vpc, chain.Layers[1].Format);
        Assert.Equal(FormatSource.Recorded, chain.Layers[1].FormatSource);

        // Probed, the same image may not lead anywhere by default: a probed format must not name other files.
        ImageChain probed = new ImageChainResolver().Resolve(dir["child.vhd"]);
        Assert.Single(probed.Layers);
        Assert.Equal(ChainEnding.Refused, probed.Ending);
    }

    [QemuImgFact]
    public void Differencing_vhd_with_only_windows_locators_is_not_opened_as_posix_paths()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "-o", "subformat=dynamic", "parent.vhd", "1M");
        byte[] child = ImageBytes.VhdDifferencing(
            File.ReadAllBytes(dir["parent.vhd"]), Guid.NewGuid(), string.Empty,
            ("W2ru", Encoding.Unicode.GetBytes(@"..\parent.vhd")));
        File.WriteAllBytes(dir["child.vhd"], child);

        ImageChain chain = new ImageChainResolver().Resolve(dir["child.vhd"], ImageFormat.Vpc);
        Assert.Single(chain.Layers);
        Assert.Equal(ReferenceKind.WindowsPath, chain.Layers[0].Backing!.Kind);
        Assert.Equal(ChainEnding.Refused, chain.Ending);
    }

    [QemuImgFact]
    public void Differencing_vhdx_is_refused_by_qemu_and_read_by_us()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vhdx", "parent.vhdx", "1M");
        byte[] child = ImageBytes.VhdxDifferencing(
            File.ReadAllBytes(dir["parent.vhdx"]),
            ("parent_linkage", "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}"),
            ("relative_path", @"..\images\parent.vhdx"),
            ("absolute_win32_path", @"\\?\d:\images\parent.vhdx"),
            ("volume_path", "parent.vhdx"));
        File.WriteAllBytes(dir["child.vhdx"], child);

        (int exit, _, string stderr) = QemuImg.TryRun(dir.Path, "info", "--output=json", "child.vhdx");
        Assert.NotEqual(0, exit);
        Assert.Contains("Operation not supported", stderr, StringComparison.Ordinal);
        VhdFamilyConformanceTests.AssertSameProbe(dir.Path, "child.vhdx");

        ImageChain chain = new ImageChainResolver().Resolve(dir["child.vhdx"], ImageFormat.Vhdx);
        ChainLayer top = chain.Layers[0];
        Assert.Equal(ImageFormat.Vhdx, top.Format);
        Assert.Equal(1048576, top.VirtualSize);
        Assert.Equal(["parent.vhdx", @"..\images\parent.vhdx", @"\\?\d:\images\parent.vhdx"], top.References.Select(r => r.StoredName));
        Assert.All(top.References, r => Assert.Equal(ReferenceRole.BackingFile, r.Role));
        Assert.Equal(ChainEnding.Complete, chain.Ending);
        Assert.Equal(ImageFormat.Vhdx, chain.Layers[1].Format);
    }

    [QemuImgFact]
    public void Raw_image_named_dmg_probes_as_dmg_and_fails_like_qemu()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["plain.dmg"], new byte[65536]);
        (int exit, _, string stderr) = QemuImg.TryRun(dir.Path, "info", "plain.dmg");
        Assert.NotEqual(0, exit);
        Assert.Contains("Could not locate UDIF trailer in dmg file", stderr, StringComparison.Ordinal);

        ImageChain chain = new ImageChainResolver().Resolve(dir["plain.dmg"]);
        Assert.Equal(ChainEnding.Malformed, chain.Ending);
        Assert.Contains("Could not locate UDIF trailer in dmg file", chain.ErrorMessage, StringComparison.Ordinal);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "plain.dmg", backingChain: false, "raw");
    }
}
