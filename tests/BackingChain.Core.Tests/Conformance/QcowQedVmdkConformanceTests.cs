using System.IO;
using BackingChain.Detection;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// qcow (v1), QED and VMDK images made by qemu-img at test time; our <c>info --output json</c> (with and
/// without <c>--backing-chain</c>, with and without <c>-f</c>) must equal qemu-img's field by field, and our
/// probe must pick the format qemu-img picks.
/// </summary>
public sealed class QcowQedVmdkConformanceTests
{
    public static TheoryData<string, string[]> Images => new()
    {
        { "qcow", ["create -q -f qcow top.img 1M"] },
        { "qcow odd size", ["create -q -f qcow top.img 1000"] },
        { "qcow huge", ["create -q -f qcow top.img 1T"] },
        { "qcow over qcow", ["create -q -f qcow base.img 1M", "create -q -f qcow -b base.img -F qcow top.img"] },
        { "qcow over raw", ["create -q -f raw base.img 1M", "create -q -f qcow -b base.img -F raw top.img"] },
        { "qcow over qcow2", ["create -q -f qcow2 base.img 1M", "create -q -f qcow -b base.img -F qcow2 top.img"] },
        { "qed", ["create -q -f qed top.img 1M"] },
        { "qed small clusters", ["create -q -f qed -o cluster_size=4096,table_size=2 top.img 1M"] },
        { "qed big tables", ["create -q -f qed -o cluster_size=1M,table_size=16 top.img 1G"] },
        { "qed over qed", ["create -q -f qed base.img 1M", "create -q -f qed -b base.img -F qed top.img"] },
        { "qed over raw", ["create -q -f raw base.img 1M", "create -q -f qed -b base.img -F raw top.img"] },
        { "vmdk monolithicSparse", ["create -q -f vmdk -o subformat=monolithicSparse top.img 1M"] },
        { "vmdk streamOptimized", ["create -q -f vmdk -o subformat=streamOptimized top.img 1M"] },
        { "vmdk monolithicFlat", ["create -q -f vmdk -o subformat=monolithicFlat top.img 1M"] },
        { "vmdk twoGbMaxExtentSparse", ["create -q -f vmdk -o subformat=twoGbMaxExtentSparse top.img 5G"] },
        { "vmdk twoGbMaxExtentFlat", ["create -q -f vmdk -o subformat=twoGbMaxExtentFlat top.img 5G"] },
        { "vmdk zeroed grain", ["create -q -f vmdk -o zeroed_grain=on top.img 1M"] },
        { "vmdk delta", ["create -q -f vmdk base.img 1M", "create -q -f vmdk -b base.img -F vmdk top.img"] },
        { "vmdk split delta", ["create -q -f vmdk base.img 1M", "create -q -f vmdk -o subformat=twoGbMaxExtentSparse -b base.img -F vmdk top.img"] },
    };

    [QemuImgTheory]
    [MemberData(nameof(Images))]
    public void Info_matches_qemu_img(string label, string[] commands)
    {
        _ = label;
        using var dir = Create(commands);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "top.img", backingChain: false);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "top.img", backingChain: true);
    }

    [QemuImgTheory]
    [MemberData(nameof(Images))]
    public void Info_with_the_format_given_matches_qemu_img(string label, string[] commands)
    {
        _ = label;
        using var dir = Create(commands);
        string format = (string)QemuImg.Info(dir.Path, "top.img")["format"]!;
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "top.img", backingChain: true, format);
    }

    [QemuImgTheory]
    [MemberData(nameof(Images))]
    public void Info_from_another_directory_matches_qemu_img(string label, string[] commands)
    {
        _ = label;
        using var dir = Create(commands);
        string parent = Path.GetDirectoryName(dir.Path)!;
        Qcow2ConformanceTests.AssertSameInfo(parent, Path.Combine(Path.GetFileName(dir.Path), "top.img"), backingChain: true);
    }

    [QemuImgTheory]
    [MemberData(nameof(Images))]
    public void Probe_picks_what_qemu_img_picks(string label, string[] commands)
    {
        _ = label;
        using var dir = Create(commands);
        foreach (string file in Directory.GetFiles(dir.Path))
        {
            (int exit, string stdout, _) = QemuImg.TryRun(dir.Path, "info", "--output=json", Path.GetFileName(file));
            if (exit != 0)
            {
                continue; // a bare extent file of a descriptor may not open on its own
            }

            string expected = (string)System.Text.Json.Nodes.JsonNode.Parse(stdout)!["format"]!;
            byte[] head = ReadHead(file);
            Assert.Equal(expected, ImageFormatDetector.Detect(head, file, new FileInfo(file).Length).GetQemuName());
        }
    }

    [QemuImgFact]
    public void Qed_need_check_bit_is_not_reported_as_dirty_by_qemu_and_not_by_us()
    {
        using var dir = Create(["create -q -f qed top.img 1M"]);
        string path = dir["top.img"];
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Position = 16; // features
            stream.WriteByte(2); // QED_F_NEED_CHECK
        }

        Assert.False((bool)QemuImg.Info(dir.Path, "top.img")["dirty-flag"]!);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "top.img", backingChain: false);
    }

    [QemuImgTheory]
    [InlineData("# Disk DescriptorFile\n   \nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 2048 FLAT \"data.raw\" 0\n")]
    [InlineData("# Disk DescriptorFile\r\nversion=1\r\nCID=12345678\r\nparentCID=ffffffff\r\ncreateType=\"twoGbMaxExtentFlat\"\r\nRW 2048 FLAT \"data.raw\" 0\r\nRW 1024 FLAT \"data.raw\" 1024\r\n")]
    [InlineData("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"data.raw\"\n0\nRW 0 FLAT \"data.raw\" 0\nRDONLY 9 FLAT \"data.raw\" 0\nRW 9 ZERO \"x\"\n")]
    [InlineData("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\nRW 2048 VMFS \"data.raw\"\n")]
    [InlineData("version=1\nparentCID=abc\nCID=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"data.raw\" 0\n")]
    [InlineData("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\nRW 2048 SPARSE \"sparse.vmdk\"\nRW 2048 FLAT \"data.raw\" 0\n")]
    public void Hand_written_descriptors_match_qemu_img(string descriptor)
    {
        using var dir = Create(["create -q -f raw data.raw 1M", "create -q -f vmdk sparse.vmdk 1M"]);
        File.WriteAllText(dir["top.img"], descriptor);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "top.img", backingChain: false);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "top.img", backingChain: false, "vmdk");
    }

    [QemuImgTheory]
    [InlineData("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\nRW 2048 FLAT \"data.raw\" 0\n")]
    [InlineData("version=1\nCID=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"data.raw\" 0\n")]
    [InlineData("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"data.raw\" -1\n")]
    [InlineData("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 SPARSE \"data.raw\"\n")]
    [InlineData("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"missing.raw\" 0\n")]
    [InlineData("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\nRW 2048 FLAT \"data.raw\" 0\n")]
    public void Descriptors_qemu_refuses_are_refused(string descriptor)
    {
        using var dir = Create(["create -q -f raw data.raw 1M"]);
        File.WriteAllText(dir["top.img"], descriptor);
        Assert.NotEqual(0, QemuImg.TryRun(dir.Path, "info", "top.img").ExitCode);
        Assert.NotEqual(0, CliRunner.Run(dir.Path, "info", "--output", "json", "top.img").ExitCode);
    }

    [QemuImgFact]
    public void Qed_with_one_cluster_tables_is_refused_like_qemu_refuses_it()
    {
        // qemu-img 7.2 creates it, then cannot open it: a one-cluster table never passes qed_check_table_offset.
        using var dir = Create(["create -q -f qed -o cluster_size=4096,table_size=1 top.img 1M"]);
        (int qemuExit, _, string qemuError) = QemuImg.TryRun(dir.Path, "info", "top.img");
        Assert.NotEqual(0, qemuExit);
        Assert.Contains("QED table offset is invalid", qemuError, System.StringComparison.Ordinal);
        Assert.NotEqual(0, CliRunner.Run(dir.Path, "info", "--output", "json", "top.img").ExitCode);
    }

    private static ScratchDirectory Create(string[] commands)
    {
        var dir = new ScratchDirectory();
        foreach (string command in commands)
        {
            QemuImg.Run(dir.Path, command.Split(' '));
        }

        return dir;
    }

    private static byte[] ReadHead(string file)
    {
        using FileStream stream = File.OpenRead(file);
        byte[] head = new byte[ImageFormatDetector.ProbeLength];
        int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return head[..read];
    }
}
