using System;
using System.IO;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Trust;
using BackingChain.Chain;
using BackingChain.Streaming;
using BackingChain.Tests.Conformance;
using BackingChain.Tests.Infrastructure;
using static BackingChain.Tests.Streaming.UploadTestHelpers;

namespace BackingChain.Tests.Streaming;

/// <summary>
/// The formats that landed after the qcow2 reader, through the upload gate: byte-made bochs, cloop and DMG,
/// LUKS, differencing VHD and VHDX (references in parent locators), fixed VHDs and DMGs whose metadata is at the
/// end (the tail ring), and polyglots.
/// </summary>
public sealed class UploadOtherFormatsTests
{
    private const long TwoGiB = 2L * 1024 * 1024 * 1024;

    public static TheoryData<string, string> ByteMade => new()
    {
        { "bochs", "bochs v2" },
        { "bochs", "bochs v1" },
        { "cloop", "cloop" },
        { "dmg", "dmg plist" },
        { "dmg", "dmg resource fork" },
    };

    [QemuImgTheory]
    [MemberData(nameof(ByteMade))]
    public async Task Inspect_byte_made_images_match_qemu_img(string format, string label)
    {
        byte[] image = label switch
        {
            "bochs v2" => ImageBytes.Bochs(1024 * 1024, 256, 4096),
            "bochs v1" => ImageBytes.Bochs(2 * 1024 * 1024, 512, 4096, version: 0x00010000),
            "cloop" => ImageBytes.Cloop(65536, 16),
            "dmg plist" => ImageBytes.DmgWithPlist(2048),
            _ => ImageBytes.DmgWithResourceFork(4096),
        };
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["image"], image); // no .dmg suffix: the gate never probes by name, so neither may qemu here
        Assert.True(ImageFormatNames.TryParse(format, out ImageFormat imageFormat));

        UploadInspection declared = await InspectWithEveryChunkSizeAsync(image, new UploadInspectionOptions { DeclaredFormat = imageFormat });
        UploadInspection probed = await InspectAsync(image, 4096);

        JsonNode info = QemuImg.Info(dir.Path, "image", format: format);
        Assert.True(declared.IsAccepted, Describe(declared));
        Assert.Equal(info["virtual-size"]!.GetValue<long>(), declared.VirtualSize);
        JsonNode probedInfo = QemuImg.Info(dir.Path, "image");
        Assert.Equal(probedInfo["format"]!.GetValue<string>(), probed.Format.GetQemuName());
        Assert.Equal(probedInfo["virtual-size"]!.GetValue<long>(), probed.VirtualSize);
        if (format == "dmg")
        {
            // qemu probes a DMG by its name only; the content shows the trailer, and the gate says so.
            Assert.Equal(ImageFormat.Dmg, probed.Detection.Format);
            Assert.Contains(probed.Findings, f => f.Code == FindingCodes.FormatMismatch);
        }
    }

    [QemuImgFact]
    public async Task Inspect_DMG_with_its_plist_after_8_MiB_of_data_is_read_from_the_tail_ring()
    {
        // The byte-made DMG's plist and trailer, moved behind 8 MiB of data fork: XMLOffset (koly + 216) follows.
        const int DataFork = 8 * 1024 * 1024;
        const int XmlOffsetField = 216;
        byte[] small = ImageBytes.DmgWithPlist(2048);
        byte[] image = new byte[DataFork + small.Length];
        small.CopyTo(image, DataFork);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(image.Length - 512 + XmlOffsetField), DataFork);
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["image"], image);
        var options = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Dmg };

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(image, options, smallestChunk: 7);
        UploadInspection noTail = await InspectAsync(image, 4096, new UploadInspectionOptions { DeclaredFormat = ImageFormat.Dmg, TailWindowLength = 0 });

        Assert.True(inspection.IsAccepted, Describe(inspection));
        Assert.Equal(QemuImg.Info(dir.Path, "image", format: "dmg")["virtual-size"]!.GetValue<long>(), inspection.VirtualSize);
        Assert.Equal(TrustReason.MetadataOutsideWindow, noTail.Reason);
    }

    [QemuImgFact]
    public async Task Inspect_two_GiB_fixed_VHD_footer_comes_from_the_tail_ring()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "-o", "subformat=fixed", "disk.vhd", "2G");
        long length = new FileInfo(dir["disk.vhd"]).Length;
        byte[] footer = new byte[512];
        using (FileStream file = File.OpenRead(dir["disk.vhd"]))
        {
            file.Seek(-512, SeekOrigin.End);
            file.ReadExactly(footer);
        }

        // Zeros, then the footer: the fixed VHD as it streams, without ever existing in memory.
        byte[] zeros = new byte[1024 * 1024];
        var reader = new ChunkedPipeReader(
            (offset, count) => offset >= length - 512 ? footer.AsMemory((int)(offset - (length - 512)), count)
                : offset + count <= length - 512 ? zeros.AsMemory(0, count)
                : Splice(zeros, footer, (int)(length - 512 - offset), count),
            length,
            1024 * 1024 - 3); // an odd chunk, so the footer straddles two reads
        var options = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Vpc, ExpectedLength = length };

        UploadInspection inspection = await ImageUploadInspector.InspectAsync(reader, options);

        Assert.True(inspection.IsAccepted, Describe(inspection));
        Assert.Equal(QemuImg.Info(dir.Path, "disk.vhd", format: "vpc")["virtual-size"]!.GetValue<long>(), inspection.VirtualSize);
        long bound = UploadInspectionOptions.DefaultHeadWindowLength + (64 * 1024) + UploadInspectionOptions.DefaultTailWindowLength;
        Assert.True(inspection.PeakBufferBytes <= bound, $"held {inspection.PeakBufferBytes}");

        // Undeclared, qemu probes it as raw (its footer is only at the end); the gate accepts raw and notes the footer.
        var again = new ChunkedPipeReader((offset, count) => offset >= length - 512 ? footer.AsMemory((int)(offset - (length - 512)), count) : offset + count <= length - 512 ? zeros.AsMemory(0, count) : Splice(zeros, footer, (int)(length - 512 - offset), count), length, 1024 * 1024 - 3);
        UploadInspection probed = await ImageUploadInspector.InspectAsync(again);
        Assert.Equal(TrustReason.ProbedRaw, probed.Reason);
        Assert.Equal(ImageFormat.Vpc, probed.Detection.Format);
        Assert.Contains(probed.Findings, f => f.Code == FindingCodes.FormatMismatch && f.Message.Contains("VHD footer", StringComparison.Ordinal));
    }

    [QemuImgTheory]
    [InlineData(null, TrustReason.ProbedWithUntrustedReferences)]
    [InlineData(ImageFormat.Vpc, TrustReason.ReferenceNotTrusted)]
    public async Task Inspect_differencing_VHD_parent_locators_are_references(ImageFormat? declared, TrustReason expected)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "-o", "subformat=dynamic", "parent.vhd", "1M");
        byte[] child = ImageBytes.VhdDifferencing(
            File.ReadAllBytes(dir["parent.vhd"]),
            Guid.NewGuid(),
            "parent.vhd",
            ("W2ru", Encoding.Unicode.GetBytes(@".\parent.vhd")),
            ("MacX", Encoding.UTF8.GetBytes("file://localhost/etc/shadow")));

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(child, new UploadInspectionOptions { DeclaredFormat = declared });

        Assert.Equal(expected, inspection.Reason);
        Assert.NotEmpty(inspection.References);
        Assert.All(inspection.References, r => Assert.Equal(ReferenceRole.BackingFile, r.Role));
        Assert.Contains(inspection.References, r => r.StoredName == @".\parent.vhd" && r.Kind == ReferenceKind.WindowsPath);
    }

    [QemuImgFact]
    public async Task Inspect_differencing_VHDX_needs_its_metadata_region_in_the_head()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vhdx", "parent.vhdx", "1M");
        byte[] child = ImageBytes.VhdxDifferencing(
            File.ReadAllBytes(dir["parent.vhdx"]),
            ("parent_linkage", "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}"),
            ("relative_path", @"..\images\parent.vhdx"),
            ("volume_path", "/etc/shadow"));
        var declared = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Vhdx };

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(child, declared, smallestChunk: 7);
        UploadInspection narrow = await InspectAsync(child, 4096, new UploadInspectionOptions { DeclaredFormat = ImageFormat.Vhdx, HeadWindowLength = 2 * 1024 * 1024, TailWindowLength = 0 });

        Assert.Equal(TrustReason.ReferenceNotTrusted, inspection.Reason);
        Assert.Equal(1048576, inspection.VirtualSize);
        Assert.Contains(inspection.References, r => r.StoredName == "/etc/shadow" && r.Role == ReferenceRole.BackingFile);
        Assert.Equal(TrustReason.MetadataOutsideWindow, narrow.Reason);
    }

    [QemuImgFact]
    public async Task Inspect_LUKS_is_accepted_with_its_payload_size()
    {
        using var dir = new ScratchDirectory();
        VhdFamilyConformanceTests.CreateLuks(dir.Path, "luks.img");
        byte[] image = File.ReadAllBytes(dir["luks.img"]);

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(image, smallestChunk: 7);

        Assert.True(inspection.IsAccepted, Describe(inspection));
        Assert.Equal(ImageFormat.Luks, inspection.Format);
        Assert.True(inspection.Layer!.Encrypted);
        Assert.Equal(QemuImg.Info(dir.Path, "luks.img")["virtual-size"]!.GetValue<long>(), inspection.VirtualSize);
    }

    [QemuImgTheory]
    [InlineData(null, TrustReason.AmbiguousContent)]
    [InlineData(ImageFormat.Qcow2, TrustReason.FormatDeclared)]
    public async Task Inspect_qcow2_with_a_VHD_footer_is_a_polyglot(ImageFormat? declared, TrustReason expected)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "-o", "subformat=fixed", "disk.vhd", "1M");
        byte[] qcow2 = File.ReadAllBytes(dir["image.qcow2"]);
        byte[] vhd = File.ReadAllBytes(dir["disk.vhd"]);
        byte[] polyglot = [.. qcow2, .. vhd.AsSpan(vhd.Length - 512).ToArray()];

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(polyglot, new UploadInspectionOptions { DeclaredFormat = declared }, smallestChunk: 7);

        Assert.Equal(expected, inspection.Reason);
        Assert.True(inspection.Detection.IsPolyglot);
        Assert.Contains(inspection.Findings, f => f.Code == FindingCodes.FormatMismatch && f.Message.Contains("several formats", StringComparison.Ordinal));
    }

    private static ReadOnlyMemory<byte> Splice(byte[] zeros, byte[] footer, int zeroCount, int count)
    {
        byte[] mixed = new byte[count];
        zeros.AsSpan(0, zeroCount).CopyTo(mixed);
        footer.AsSpan(0, count - zeroCount).CopyTo(mixed.AsSpan(zeroCount));
        return mixed;
    }
}
