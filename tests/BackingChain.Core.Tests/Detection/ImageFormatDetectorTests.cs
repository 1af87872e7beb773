using System;
using System.Buffers.Binary;
using System.IO;
using BackingChain.Detection;
using BackingChain.Formats;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Detection;

/// <summary>The probe gives qemu 7.2's winner (its probe order and scores, checked against qemu-img 7.2).</summary>
public sealed class ImageFormatDetectorTests
{
    [Theory]
    [InlineData(2u)]
    [InlineData(3u)]
    [InlineData(4u)] // qemu probes version 4 as qcow2 and then fails "Unsupported qcow2 version 4"
    [InlineData(0xFFFFFFFFu)]
    public void Qcow2_magic_with_version_2_or_more_is_qcow2(uint version)
    {
        byte[] head = new byte[512];
        BinaryPrimitives.WriteUInt32BigEndian(head, 0x514649FB);
        BinaryPrimitives.WriteUInt32BigEndian(head.AsSpan(4), version);

        Assert.Equal(ImageFormat.Qcow2, ImageFormatDetector.Detect(head));
    }

    [Fact]
    public void Zeros_text_and_empty_images_are_raw()
    {
        Assert.Equal(ImageFormat.Raw, ImageFormatDetector.Detect(new byte[512]));
        Assert.Equal(ImageFormat.Raw, ImageFormatDetector.Detect("hello world"u8));
        Assert.Equal(ImageFormat.Raw, ImageFormatDetector.Detect([], imageLength: 0));
    }

    [Fact]
    public void A_short_file_is_padded_with_zeros_as_qemu_reads_it()
    {
        // 112 bytes of qcow2 header in an 8-byte file: qemu's probe sees the magic and a version in the padded buffer.
        byte[] head = [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3];

        Assert.Equal(ImageFormat.Qcow2, ImageFormatDetector.Detect(head, imageLength: head.Length));
    }

    [Fact]
    public void The_file_name_suffix_never_makes_a_qcow2_or_raw_decision()
    {
        Assert.Equal(ImageFormat.Raw, ImageFormatDetector.Detect(new byte[512], "disk.qcow2"));
    }

    [QemuImgFact]
    public void Qemu_made_images_probe_as_qemu_probes_them()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "a.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "b.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "c.raw", "1M");

        foreach (string name in new[] { "a.qcow2", "b.qcow2", "c.raw" })
        {
            string qemuChoice = (string)QemuImg.Info(dir.Path, name)["format"]!;
            byte[] head = File.ReadAllBytes(dir[name]).AsSpan(0, 512).ToArray();
            Assert.Equal(qemuChoice, ImageFormatDetector.Detect(head).GetQemuName());
        }
    }

    [QemuImgFact]
    public async System.Threading.Tasks.Task A_signature_qemu_misses_is_noted_only_for_a_format_not_already_shown()
    {
        // A dynamic VHD has its footer at the start (which qemu probes) and again at the end; a fixed one only at
        // the end. The second copy is no news, so the dynamic disk shows one signature and the fixed one its tail.
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "-o", "subformat=dynamic", "dynamic.vhd", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "-o", "subformat=fixed", "fixed.vhd", "1M");

        using (var source = new BackingChain.Sources.MemoryImageSource("dynamic.vhd", File.ReadAllBytes(dir["dynamic.vhd"])))
        {
            ThoroughDetection dynamic = await ImageFormatDetector.DetectThoroughAsync(source);
            FormatSignature only = Assert.Single(dynamic.Signatures);
            Assert.Equal((string)QemuImg.Info(dir.Path, "dynamic.vhd")["format"]!, only.Format.GetQemuName());
            Assert.Equal(SignatureLocation.Head, only.Location);
            Assert.True(only.SeenByQemu);
        }

        using (var source = new BackingChain.Sources.MemoryImageSource("fixed.vhd", File.ReadAllBytes(dir["fixed.vhd"])))
        {
            ThoroughDetection fixedDisk = await ImageFormatDetector.DetectThoroughAsync(source);
            FormatSignature only = Assert.Single(fixedDisk.Signatures);
            Assert.Equal(ImageFormat.Vpc, only.Format);
            Assert.Equal(SignatureLocation.Tail, only.Location);
            Assert.False(only.SeenByQemu);
            Assert.Equal((string)QemuImg.Info(dir.Path, "fixed.vhd")["format"]!, fixedDisk.QemuFormat.GetQemuName()); // raw: qemu's blind spot
        }
    }
}
