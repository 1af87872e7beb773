using System;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;
using static BackingChain.Tests.Streaming.UploadTestHelpers;

namespace BackingChain.Tests.Streaming;

/// <summary>
/// Images made by qemu-img at test time, streamed in 1-byte, 7-byte, 4 KiB and 1 MiB segments: the format and
/// virtual size must equal <c>qemu-img info</c>'s, every segmentation must give the same inspection, and the
/// header facts must equal what the resolver reads from the file (one parse path for files and streams).
/// </summary>
public sealed class UploadConformanceTests
{
    public static TheoryData<string, string, string> Images => new()
    {
        { "raw", "raw", "" },
        { "qcow2 v3", "qcow2", "" },
        { "qcow2 v2", "qcow2", "compat=0.10" },
        { "qcow2 512-byte clusters", "qcow2", "cluster_size=512" },
        { "qcow2 2M clusters", "qcow2", "cluster_size=2M" },
        { "qcow2 extended l2 zstd", "qcow2", "extended_l2=on,compression_type=zstd" },
        { "qcow", "qcow", "" },
        { "qed", "qed", "" },
        { "vmdk monolithicSparse", "vmdk", "" },
        { "vmdk streamOptimized", "vmdk", "subformat=streamOptimized" },
        { "vpc dynamic", "vpc", "" },
        { "vpc fixed", "vpc", "subformat=fixed" },
        { "vhdx", "vhdx", "" },
        { "vdi", "vdi", "" },
        { "parallels", "parallels", "" },
    };

    [QemuImgTheory]
    [MemberData(nameof(Images))]
    public async Task Inspect_matches_qemu_img_info_for_every_chunk_size(string label, string format, string createOptions)
    {
        _ = label;
        Assert.True(ImageFormatNames.TryParse(format, out ImageFormat expectedFormat));

        using var dir = new ScratchDirectory();
        string file = "image." + format;
        var create = new System.Collections.Generic.List<string> { "create", "-q", "-f", format };
        if (createOptions.Length > 0)
        {
            create.Add("-o");
            create.Add(createOptions);
        }

        create.AddRange([file, "3M"]);
        QemuImg.Run(dir.Path, [.. create]);
        byte[] image = File.ReadAllBytes(dir[file]);
        JsonNode info = QemuImg.Info(dir.Path, file, format: format);

        // One-byte segments make one read per byte: keep that to images a few MiB long.
        UploadInspection probed = await InspectWithEveryChunkSizeAsync(image, smallestChunk: image.Length <= 4 * 1024 * 1024 ? 1 : 7);
        UploadInspection declared = await InspectAsync(image, 4096, new UploadInspectionOptions { DeclaredFormat = expectedFormat });

        string expectedName = info["format"]!.GetValue<string>();
        long expectedSize = info["virtual-size"]!.GetValue<long>();
        Assert.Equal(expectedName, declared.Format.GetQemuName());
        Assert.True(declared.IsAccepted, Describe(declared));
        Assert.Equal(expectedSize, declared.VirtualSize);
        Assert.Equal(image.Length, declared.Length);

        // qemu's probe (first 512 bytes) decides the undeclared case: a fixed VHD, say, probes as raw.
        JsonNode probedInfo = QemuImg.Info(dir.Path, file);
        Assert.Equal(probedInfo["format"]!.GetValue<string>(), probed.Format.GetQemuName());
        Assert.Equal(probedInfo["virtual-size"]!.GetValue<long>(), probed.VirtualSize);

        ImageChain chain = await new ImageChainResolver().ResolveAsync(dir[file], expectedFormat);
        ChainLayer fromFile = Assert.Single(chain.Layers);
        Assert.NotNull(declared.Layer);
        Assert.Equal(fromFile.VirtualSize, declared.Layer.VirtualSize);
        Assert.Equal(fromFile.ClusterSize, declared.Layer.ClusterSize);
        Assert.Equal(fromFile.Encrypted, declared.Layer.Encrypted);
        Assert.Equal(fromFile.References.Select(r => (r.StoredName, r.Role, r.RecordedFormat)), declared.References.Select(r => (r.StoredName, r.Role, r.RecordedFormat)));
    }

    [QemuImgFact]
    public async Task Inspect_qcow2_with_backing_and_data_file_reports_what_qemu_img_reports()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "2M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=data.raw", "-b", "base.raw", "-F", "raw", "top.qcow2", "2M");
        JsonNode info = QemuImg.Info(dir.Path, "top.qcow2", format: "qcow2");
        // Named as qemu-img was given it, so full-backing-filename is formed the same way.
        var options = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Qcow2, Name = "top.qcow2" };

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(File.ReadAllBytes(dir["top.qcow2"]), options);

        Assert.Equal(info["virtual-size"]!.GetValue<long>(), inspection.VirtualSize);
        ImageReference backing = inspection.References.Single(r => r.Role == ReferenceRole.BackingFile);
        Assert.Equal(info["backing-filename"]!.GetValue<string>(), backing.StoredName);
        Assert.Equal(info["full-backing-filename"]!.GetValue<string>(), backing.FullName);
        Assert.Equal(info["backing-filename-format"]!.GetValue<string>(), backing.RecordedFormat);
        ImageReference data = inspection.References.Single(r => r.Role == ReferenceRole.ExternalDataFile);
        Assert.Equal(info["format-specific"]!["data"]!["data-file"]!.GetValue<string>(), data.StoredName);
        Assert.Equal(TrustReason.ReferenceNotTrusted, inspection.Reason); // the default policy trusts nowhere
    }

    [QemuImgFact]
    public async Task Inspect_truncated_qcow2_at_every_cut_never_throws()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "image.qcow2", "1M");
        byte[] image = File.ReadAllBytes(dir["image.qcow2"]);

        // Every cut inside the first sector and a few beyond: a verdict each time, never an exception.
        foreach (int cut in Enumerable.Range(0, 600).Concat([1024, 4096, 65536, image.Length - 1]))
        {
            byte[] truncated = image.AsSpan(0, cut).ToArray();
            UploadInspection inspection = await InspectAsync(truncated, 7, new UploadInspectionOptions { ExpectedLength = image.Length });
            Assert.Equal(TrustDecision.Rejected, inspection.Verdict);
        }
    }
}
