using System.IO;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// Backing chains made by qemu-img; <c>info --backing-chain --output json</c> must equal qemu-img's, element by
/// element and field by field, including <c>full-backing-filename</c>, which qemu forms without normalising.
/// </summary>
public sealed class ChainConformanceTests
{
    [QemuImgTheory]
    [InlineData("0.10")]
    [InlineData("1.1")]
    public void Overlay_over_raw_and_qcow2(string compat)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", $"compat={compat}", "-b", "base.raw", "-F", "raw", "mid.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", $"compat={compat}", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "top.qcow2", backingChain: true);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "top.qcow2", backingChain: true, format: "qcow2");
    }

    [QemuImgFact]
    public void Relative_names_resolve_against_the_overlay_directory_from_another_working_directory()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["images"]);
        QemuImg.Run(dir["images"], "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(dir["images"], "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "over.qcow2");

        // From the parent directory: full-backing-filename becomes "images/base.qcow2".
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "images/over.qcow2", backingChain: true);
    }

    [QemuImgFact]
    public void Dot_dot_and_subfolder_names_are_kept_unnormalised()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["sub/dir"]);
        Directory.CreateDirectory(dir["lower"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "../base.raw", "-F", "raw", "lower/mid.qcow2");
        QemuImg.Run(dir["sub/dir"], "create", "-q", "-f", "qcow2", "-b", "../../lower/mid.qcow2", "-F", "qcow2", "top.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "sub/dir/top.qcow2", "-F", "qcow2", "outer.qcow2");

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "outer.qcow2", backingChain: true);
        Qcow2ConformanceTests.AssertSameInfo(dir["sub"], "dir/top.qcow2", backingChain: true);
    }

    [QemuImgFact]
    public void Absolute_backing_names()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", dir["base.raw"], "-F", "raw", "abs.qcow2");

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "abs.qcow2", backingChain: true);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, dir["abs.qcow2"], backingChain: true);
    }

    [QemuImgFact]
    public void A_thirty_deep_chain()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "layer00.qcow2", "1M");
        for (int i = 1; i < 30; i++)
        {
            QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", $"layer{i - 1:00}.qcow2", "-F", "qcow2", $"layer{i:00}.qcow2");
        }

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "layer29.qcow2", backingChain: true);
    }

    [QemuImgFact]
    public void Missing_backing_format_is_probed_like_qemu()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.qcow2", "-F", "qcow2", "over.qcow2");
        // qemu-img 7.2 writes v2 images with a backing-format extension at 0x48: overwrite the v2 backing-format extension (at 0x48) with an end marker.
        byte[] bytes = File.ReadAllBytes(dir["over.qcow2"]);
        System.Array.Clear(bytes, 0x48, 8);
        File.WriteAllBytes(dir["over.qcow2"], bytes);

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "over.qcow2", backingChain: true);
    }

    [QemuImgFact]
    public void Encrypted_images_and_data_files_in_a_chain()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=data.raw", "-b", "base.raw", "-F", "raw", "df.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=123456", "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10", "-b", "df.qcow2", "-F", "qcow2", "enc.qcow2");

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "enc.qcow2", backingChain: true);
    }

    [QemuImgFact]
    public void Aes_encryption_snapshots_and_bitmaps()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=123456", "-o", "encrypt.format=aes,encrypt.key-secret=s0", "aes.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "snap.qcow2", "1M");
        QemuImg.Run(dir.Path, "snapshot", "-c", "first", "snap.qcow2");
        QemuImg.Run(dir.Path, "snapshot", "-c", "second one", "snap.qcow2");
        QemuImg.Run(dir.Path, "bitmap", "--add", "snap.qcow2", "bm0");
        QemuImg.Run(dir.Path, "bitmap", "--add", "-g", "512k", "--disable", "snap.qcow2", "bm-disabled");

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "aes.qcow2", backingChain: false);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "snap.qcow2", backingChain: false);
    }

    [QemuImgFact]
    public void Dirty_and_corrupt_bits()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        byte[] bytes = File.ReadAllBytes(dir["image.qcow2"]);
        bytes[79] |= 0b11;
        File.WriteAllBytes(dir["image.qcow2"], bytes);

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "image.qcow2", backingChain: false);
    }

    [QemuImgFact]
    public void Raw_images_of_odd_sizes()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["odd.raw"], new byte[1000]);
        File.WriteAllBytes(dir["empty.raw"], []);

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "odd.raw", backingChain: false);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "empty.raw", backingChain: true);
        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "odd.raw", backingChain: false, format: "raw");
    }

    [QemuImgFact]
    public void A_qcow2_read_as_raw_when_declared_raw()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "over.qcow2");

        Qcow2ConformanceTests.AssertSameInfo(dir.Path, "over.qcow2", backingChain: true, format: "raw");
    }
}
