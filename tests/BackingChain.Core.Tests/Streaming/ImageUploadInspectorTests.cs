using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using static BackingChain.Tests.Streaming.UploadTestHelpers;

namespace BackingChain.Tests.Streaming;

public sealed class ImageUploadInspectorTests
{
    private const long TwoGiB = 2L * 1024 * 1024 * 1024;
    private const int MiB = 1024 * 1024;

    [Fact]
    public async Task Inspect_empty_upload_is_rejected_by_default()
    {
        UploadInspection inspection = await InspectWithEveryChunkSizeAsync([]);

        Assert.Equal(TrustDecision.Rejected, inspection.Verdict);
        Assert.Equal(TrustReason.EmptyUpload, inspection.Reason);
        Assert.Equal(0, inspection.Length);
        ChainFinding finding = Assert.Single(inspection.Findings);
        Assert.Equal(FindingCodes.MalformedHeader, finding.Code);
        Assert.Contains("empty", finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inspect_empty_upload_when_allowed_is_accepted_as_probed_raw()
    {
        UploadInspection inspection = await InspectWithEveryChunkSizeAsync([], new UploadInspectionOptions { AllowEmpty = true });

        Assert.Equal(TrustDecision.Accepted, inspection.Verdict);
        Assert.Equal(TrustReason.ProbedRaw, inspection.Reason);
        Assert.Equal(ImageFormat.Raw, inspection.Format);
        Assert.Equal(0, inspection.Length);
        Assert.Equal(0, inspection.VirtualSize);
        Assert.Empty(inspection.Findings);
    }

    [Fact]
    public async Task Inspect_one_byte_upload_is_not_taken_for_empty()
    {
        UploadInspection inspection = await InspectWithEveryChunkSizeAsync([0x42]);

        Assert.True(inspection.IsAccepted, Describe(inspection));
        Assert.Equal(TrustReason.ProbedRaw, inspection.Reason);
    }

    [Fact]
    public async Task Inspect_raw_bytes_virtual_size_is_length_rounded_up_to_512()
    {
        byte[] data = Enumerable.Range(0, 10_000).Select(i => (byte)(i * 31 + 7)).ToArray();

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(data);

        Assert.True(inspection.IsAccepted);
        Assert.Equal(TrustReason.ProbedRaw, inspection.Reason);
        Assert.Equal(10_000, inspection.Length);
        Assert.Equal(10_240, inspection.VirtualSize);
        Assert.Null(inspection.DeclaredFormat);
    }

    [Fact]
    public async Task Inspect_two_GiB_of_zeros_streams_without_holding_it()
    {
        var reader = ChunkedPipeReader.PrefixThenZeros([], TwoGiB, MiB);
        var options = new UploadInspectionOptions { ExpectedLength = TwoGiB };

        UploadInspection inspection = await ImageUploadInspector.InspectAsync(reader, options);

        Assert.True(inspection.IsAccepted);
        Assert.Equal(TrustReason.ProbedRaw, inspection.Reason);
        Assert.Equal(TwoGiB, inspection.Length);
        Assert.Equal(TwoGiB, inspection.VirtualSize);

        // Raw keeps only the probe (in the first, 64 KiB, head buffer) and the 64 KiB tail ring.
        Assert.True(inspection.PeakBufferBytes <= 128 * 1024, $"held {inspection.PeakBufferBytes} bytes");
        Assert.True(reader.MaxBufferLength <= MiB, $"the pipe held {reader.MaxBufferLength} bytes");
    }

    [QemuImgFact]
    public async Task Inspect_two_GiB_qcow2_upload_holds_only_its_windows()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "2G");
        byte[] header = File.ReadAllBytes(dir["image.qcow2"]);

        // The qcow2 header followed by 2 GiB of zeros, as a fully preallocated image would arrive.
        var reader = ChunkedPipeReader.PrefixThenZeros(header, TwoGiB, MiB);
        var options = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Qcow2, ExpectedLength = TwoGiB };

        UploadInspection inspection = await ImageUploadInspector.InspectAsync(reader, options);

        Assert.True(inspection.IsAccepted, Describe(inspection));
        Assert.Equal(TrustReason.FormatDeclared, inspection.Reason);
        Assert.Equal(TwoGiB, inspection.VirtualSize);
        Assert.Equal(TwoGiB, inspection.Length);
        long bound = UploadInspectionOptions.DefaultHeadWindowLength + UploadInspectionOptions.DefaultTailWindowLength + (64 * 1024);
        Assert.True(inspection.PeakBufferBytes <= bound, $"held {inspection.PeakBufferBytes} bytes, bound {bound}");
        Assert.True(reader.MaxBufferLength <= MiB);
    }

    [QemuImgFact]
    public async Task Inspect_guest_written_qcow2_header_in_raw_disk_declared_raw_is_accepted()
    {
        byte[] disk = GuestDiskWithQcow2Header("/etc/passwd");

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(disk, new UploadInspectionOptions { DeclaredFormat = ImageFormat.Raw });

        Assert.Equal(TrustDecision.Accepted, inspection.Verdict);
        Assert.Equal(TrustReason.FormatDeclared, inspection.Reason);
        Assert.Equal(ImageFormat.Raw, inspection.Format);
        Assert.Equal(ImageFormat.Raw, inspection.DeclaredFormat);
        Assert.Equal(ImageFormat.Qcow2, inspection.ProbedFormat);
        Assert.Equal(disk.Length, inspection.VirtualSize);
        Assert.Empty(inspection.References);
        ChainFinding mismatch = Assert.Single(inspection.Findings);
        Assert.Equal(FindingCodes.FormatMismatch, mismatch.Code);
    }

    [QemuImgFact]
    public async Task Inspect_guest_written_qcow2_header_in_raw_disk_undeclared_is_rejected_with_the_reference()
    {
        byte[] disk = GuestDiskWithQcow2Header("/etc/passwd");

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(disk);

        Assert.Equal(TrustDecision.Rejected, inspection.Verdict);
        Assert.Equal(TrustReason.ProbedWithUntrustedReferences, inspection.Reason);
        Assert.Equal(ImageFormat.Qcow2, inspection.Format);
        Assert.Equal(FormatSource.Probed, inspection.FormatSource);
        ImageReference reference = Assert.Single(inspection.References);
        Assert.Equal("/etc/passwd", reference.StoredName);
        Assert.Equal(ReferenceRole.BackingFile, reference.Role);
        Assert.Equal(ReferenceKind.AbsolutePath, reference.Kind);
        Assert.Equal("raw", reference.RecordedFormat);
        Assert.Contains(inspection.Findings, f => f.Code == FindingCodes.ProbedFormatWithReferences && f.Message.Contains("/etc/passwd", StringComparison.Ordinal));
    }

    [QemuImgFact]
    public async Task Inspect_probed_qcow2_with_trusted_backing_is_accepted_as_in_a_file_chain()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2", "1M");
        var options = new UploadInspectionOptions { Name = dir["upload.qcow2"], Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] } };

        UploadInspection inspection = await InspectAsync(File.ReadAllBytes(dir["top.qcow2"]), 4096, options);

        // The same rule as a file chain: every file a probed image names is present and trusted, so it may be used.
        Assert.True(inspection.IsAccepted, Describe(inspection));
        Assert.Equal(TrustReason.ProbedWithTrustedReferences, inspection.Reason);
        Assert.Equal([dir["upload.qcow2"], dir["base.raw"]], inspection.Report.Chain.Layers.Select(l => l.FileName));
        ReferenceDecision decision = Assert.Single(inspection.Report.Chain.Decisions);
        Assert.Equal((ReferenceOutcome.Opened, TrustBasis.Location), (decision.Outcome, decision.Basis));
    }

    [QemuImgFact]
    public async Task Inspect_declared_qcow2_with_backing_in_trusted_root_is_accepted()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2", "1M");
        var options = new UploadInspectionOptions
        {
            DeclaredFormat = ImageFormat.Qcow2,
            Name = dir["upload.qcow2"],
            Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] },
        };

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(File.ReadAllBytes(dir["top.qcow2"]), options, smallestChunk: 7);

        Assert.True(inspection.IsAccepted, Describe(inspection));
        Assert.Equal(TrustReason.FormatDeclared, inspection.Reason);
        ImageReference reference = Assert.Single(inspection.References);
        Assert.Equal(ReferenceKind.RelativePath, reference.Kind);
        Assert.Equal(dir["base.raw"], reference.FullName);
    }

    [QemuImgFact]
    public async Task Inspect_declared_qcow2_naming_host_file_is_rejected_as_unreachable()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "top.qcow2", "1M");
        var options = new UploadInspectionOptions
        {
            DeclaredFormat = ImageFormat.Qcow2,
            Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] },
        };

        UploadInspection inspection = await InspectAsync(File.ReadAllBytes(dir["top.qcow2"]), 4096, options);

        Assert.Equal(TrustReason.ReferenceNotTrusted, inspection.Reason);
        ChainFinding finding = Assert.Single(inspection.Findings);
        Assert.Equal(FindingCodes.UnreachableImage, finding.Code);
        Assert.Contains("not allowed by the trust policy", finding.Message, StringComparison.Ordinal);
        Assert.Equal("/etc/passwd", finding.Reference?.StoredName);
    }

    [QemuImgFact]
    public async Task Inspect_relative_backing_without_upload_name_cannot_be_trusted()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2", "1M");
        var options = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Qcow2, Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] } };

        UploadInspection inspection = await InspectAsync(File.ReadAllBytes(dir["top.qcow2"]), 4096, options);

        Assert.Equal(TrustReason.ReferenceNotTrusted, inspection.Reason);
        Assert.Null(Assert.Single(inspection.References).FullName);
    }

    [QemuImgFact]
    public async Task Inspect_external_data_file_is_reported_and_rejected()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=data.raw", "image.qcow2", "1M");

        UploadInspection inspection = await InspectAsync(File.ReadAllBytes(dir["image.qcow2"]), 4096, new UploadInspectionOptions { DeclaredFormat = ImageFormat.Qcow2 });

        Assert.Equal(TrustReason.ReferenceNotTrusted, inspection.Reason);
        ImageReference reference = Assert.Single(inspection.References);
        Assert.Equal(ReferenceRole.ExternalDataFile, reference.Role);
        Assert.Contains(inspection.Findings, f => f.Code == FindingCodes.ExternalDataFile);
        Assert.Contains(inspection.Findings, f => f.Code == FindingCodes.UnreachableImage);
    }

    [QemuImgFact]
    public async Task Inspect_protocol_backing_is_rejected_even_when_the_callback_trusts_everything()
    {
        using var dir = new ScratchDirectory();
        const string Placeholder = "xxxxxxxxxxxxxxxxxxxxxxxxx";
        const string Protocol = "nbd://attacker.example/x";
        File.WriteAllBytes(dir[Placeholder[..Protocol.Length]], new byte[512]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", Placeholder[..Protocol.Length], "-F", "raw", "top.qcow2", "1M");
        byte[] image = Replace(File.ReadAllBytes(dir["top.qcow2"]), Placeholder[..Protocol.Length], Protocol);
        var options = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Qcow2, Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, Callback = new TrustEverything() } };

        UploadInspection inspection = await InspectAsync(image, 7, options);

        Assert.Equal(TrustReason.ReferenceNotTrusted, inspection.Reason);
        Assert.Equal(ReferenceKind.Protocol, Assert.Single(inspection.References).Kind);
        Assert.Contains(inspection.Findings, f => f.Code == FindingCodes.ProtocolReference);
    }

    [QemuImgTheory]
    [InlineData(null, TrustReason.ProbedWithUntrustedReferences)]
    [InlineData(ImageFormat.Vmdk, TrustReason.ReferenceNotTrusted)]
    public async Task Inspect_VMDK_descriptor_naming_an_extent_is_rejected_with_the_extent(ImageFormat? declared, TrustReason expected)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "image.vmdk", "1M");

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(File.ReadAllBytes(dir["image.vmdk"]), new UploadInspectionOptions { DeclaredFormat = declared });

        Assert.Equal(expected, inspection.Reason);
        Assert.Equal(ImageFormat.Vmdk, inspection.Format);
        ImageReference extent = Assert.Single(inspection.References);
        Assert.Equal(ReferenceRole.Extent, extent.Role);
        Assert.Equal("image-flat.vmdk", extent.StoredName);
        Assert.Contains(inspection.Findings, f => f.Code == FindingCodes.ExternalExtent);
        Assert.DoesNotContain(inspection.Findings, f => f.Code == FindingCodes.MalformedHeader);
    }

    [QemuImgFact]
    public async Task Inspect_VMDK_descriptor_naming_a_trusted_extent_is_opened_and_accepted()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "image.vmdk", "1M");
        var options = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Vmdk, Name = dir["image.vmdk"], Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] } };

        UploadInspection inspection = await InspectAsync(File.ReadAllBytes(dir["image.vmdk"]), 4096, options);

        // A trusted extent is opened through the gate, as in a file chain, so the descriptor can be described.
        Assert.True(inspection.IsAccepted, Describe(inspection));
        Assert.Equal(TrustReason.FormatDeclared, inspection.Reason);
        Assert.Equal(ReferenceOutcome.Opened, Assert.Single(inspection.Report.Chain.Decisions).Outcome);
    }

    [QemuImgTheory]
    [InlineData("qcow")]
    [InlineData("qed")]
    public async Task Inspect_other_formats_with_backing_follow_the_same_rule(string format)
    {
        Assert.True(ImageFormatNames.TryParse(format, out ImageFormat imageFormat));

        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-b", "base.raw", "-F", "raw", "top.img", "1M");
        byte[] image = File.ReadAllBytes(dir["top.img"]);
        var trusted = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] };

        UploadInspection probed = await InspectWithEveryChunkSizeAsync(image, new UploadInspectionOptions { Name = dir["top.img"], Policy = trusted });
        UploadInspection declared = await InspectAsync(image, 4096, new UploadInspectionOptions { DeclaredFormat = imageFormat, Name = dir["top.img"], Policy = trusted });
        UploadInspection untrusted = await InspectAsync(image, 4096, new UploadInspectionOptions { DeclaredFormat = imageFormat, Name = "/srv/uploads/top.img", Policy = trusted });

        Assert.Equal(TrustReason.ProbedWithTrustedReferences, probed.Reason);
        Assert.True(probed.IsAccepted, Describe(probed));
        Assert.Equal("base.raw", Assert.Single(probed.References).StoredName);
        Assert.Equal(TrustReason.FormatDeclared, declared.Reason);
        Assert.Equal(TrustReason.ReferenceNotTrusted, untrusted.Reason);
    }

    [QemuImgFact]
    public async Task Inspect_unknown_incompatible_feature_is_rejected()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        byte[] image = File.ReadAllBytes(dir["image.qcow2"]);
        image[72] |= 0x80; // incompatible_features bit 63

        UploadInspection inspection = await InspectAsync(image, 4096);

        Assert.Equal(TrustReason.UnsupportedFeature, inspection.Reason);
        Assert.Contains(inspection.Findings, f => f.Code == FindingCodes.UnsupportedFeature);
    }

    [QemuImgFact]
    public async Task Inspect_upload_cut_inside_the_header_is_malformed()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "image.qcow2", "1M");
        byte[] image = File.ReadAllBytes(dir["image.qcow2"]).AsSpan(0, 150).ToArray();

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(image, new UploadInspectionOptions { DeclaredFormat = ImageFormat.Qcow2 });

        Assert.Equal(TrustDecision.Rejected, inspection.Verdict);
        Assert.Equal(TrustReason.MalformedHeader, inspection.Reason);
        Assert.Null(inspection.VirtualSize);
        Assert.Equal(150, inspection.Length);
    }

    [QemuImgFact]
    public async Task Inspect_upload_shorter_than_announced_is_rejected()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        byte[] full = File.ReadAllBytes(dir["image.qcow2"]);
        byte[] cut = full.AsSpan(0, full.Length - 1000).ToArray();

        UploadInspection inspection = await InspectAsync(cut, 4096, new UploadInspectionOptions { ExpectedLength = full.Length });

        Assert.Equal(TrustReason.LengthMismatch, inspection.Reason);
        Assert.Equal(1048576, inspection.VirtualSize); // the header was still read and reported
        Assert.Contains(inspection.Findings, f => f.Code == FindingCodes.MalformedHeader && f.Message.Contains("ended after", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Inspect_upload_longer_than_announced_is_rejected()
    {
        UploadInspection inspection = await InspectAsync(new byte[2000], 7, new UploadInspectionOptions { ExpectedLength = 1000 });

        Assert.Equal(TrustReason.LengthMismatch, inspection.Reason);
    }

    [QemuImgFact]
    public async Task Inspect_snapshot_table_outside_the_windows_is_rejected_not_buffered()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        QemuImg.Run(dir.Path, "snapshot", "-c", "first", "image.qcow2");
        byte[] image = File.ReadAllBytes(dir["image.qcow2"]);
        var small = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Qcow2, HeadWindowLength = 64 * 1024, TailWindowLength = 0 };

        UploadInspection narrow = await InspectWithEveryChunkSizeAsync(image, small, smallestChunk: 7);

        Assert.Equal(TrustReason.MetadataOutsideWindow, narrow.Reason);
        ChainFinding finding = narrow.Findings[0];
        Assert.Equal(FindingCodes.UnsupportedFeature, finding.Code);
        Assert.Contains("outside the bytes kept", finding.Message, StringComparison.Ordinal);
        Assert.True(narrow.PeakBufferBytes <= 64 * 1024);
    }

    [QemuImgFact]
    public async Task Inspect_backing_name_beyond_the_head_window_ends_with_a_finding_not_a_loop()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", "-b", "/etc/passwd", "-F", "raw", "image.qcow2", "1M");
        byte[] image = File.ReadAllBytes(dir["image.qcow2"]);

        // Move the backing name deep into cluster 0 (qemu allows it anywhere in the first cluster).
        const int NameOffset = 1024 * 1024;
        Assert.True(image.Length > NameOffset + 64);
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(8), NameOffset);
        Encoding.ASCII.GetBytes("/etc/passwd").CopyTo(image, NameOffset);
        var narrow = new UploadInspectionOptions { HeadWindowLength = 64 * 1024, TailWindowLength = 0 };

        UploadInspection outside = await InspectWithEveryChunkSizeAsync(image, narrow, smallestChunk: 7);
        UploadInspection inside = await InspectAsync(image, 4096);

        Assert.Equal(TrustReason.MetadataOutsideWindow, outside.Reason);
        Assert.Equal(TrustReason.ProbedWithUntrustedReferences, inside.Reason);
        Assert.Equal("/etc/passwd", Assert.Single(inside.References).StoredName);
    }

    [QemuImgFact]
    public async Task Inspect_snapshot_table_at_the_end_is_served_from_the_tail_ring()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        QemuImg.Run(dir.Path, "snapshot", "-c", "first", "image.qcow2");
        byte[] image = File.ReadAllBytes(dir["image.qcow2"]);
        ulong snapshotsOffset = BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan(64));
        Assert.True((long)snapshotsOffset > 64 * 1024 && image.Length - (long)snapshotsOffset < 64 * 1024, "qemu-img put the snapshot table elsewhere");
        var options = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Qcow2, HeadWindowLength = 64 * 1024, TailWindowLength = 64 * 1024 };

        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(image, options, smallestChunk: 7);

        Assert.True(inspection.IsAccepted, Describe(inspection));
        var info = (BackingChain.Formats.Qcow2.Qcow2FormatInfo)inspection.Layer!.FormatSpecific!;
        Assert.Equal("first", Assert.Single(info.Snapshots).Name);
        Assert.True(inspection.PeakBufferBytes <= 128 * 1024);
    }

    [QemuImgFact]
    public async Task Inspect_header_asking_for_64_MiB_outside_the_windows_allocates_nothing_like_it()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "2G");
        QemuImg.Run(dir.Path, "bitmap", "--add", "image.qcow2", "b1");
        byte[] header = File.ReadAllBytes(dir["image.qcow2"]);

        // Point the bitmap directory at 1 GiB and make it as large as qemu allows (1024 * 65535 bytes).
        int extension = FindExtension(header, 0x23852875);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(extension + 8 + 8), 1024UL * 65535);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(extension + 8 + 16), 1UL << 30);
        var reader = ChunkedPipeReader.PrefixThenZeros(header, TwoGiB, MiB);
        var options = new UploadInspectionOptions { DeclaredFormat = ImageFormat.Qcow2 };

        // Everything here completes synchronously, so the thread's allocation counter sees the whole inspection.
        int thread = Environment.CurrentManagedThreadId;
        long before = GC.GetAllocatedBytesForCurrentThread();
        UploadInspection inspection = await ImageUploadInspector.InspectAsync(reader, options);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(thread, Environment.CurrentManagedThreadId);

        Assert.Equal(TrustReason.MetadataOutsideWindow, inspection.Reason);
        Assert.Contains("offset 1073741824", inspection.Findings[0].Message, StringComparison.Ordinal);
        Assert.True(allocated < 16 * MiB, $"allocated {allocated} bytes");
    }

    [QemuImgFact]
    public async Task Inspect_snapshot_table_inside_the_default_head_is_accepted()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        QemuImg.Run(dir.Path, "snapshot", "-c", "first", "image.qcow2");

        UploadInspection inspection = await InspectAsync(File.ReadAllBytes(dir["image.qcow2"]), 4096);

        Assert.True(inspection.IsAccepted, Describe(inspection));
        Assert.Equal(TrustReason.ProbedWithoutReferences, inspection.Reason);
    }

    [Fact]
    public async Task Inspect_unknown_declared_format_is_rejected_as_unsupported()
    {
        UploadInspection inspection = await InspectAsync(new byte[4096], 4096, new UploadInspectionOptions { DeclaredFormat = ImageFormat.Unknown });

        Assert.Equal(TrustReason.UnsupportedFeature, inspection.Reason);
        Assert.Null(inspection.Layer);
    }

    [Fact]
    public async Task Inspect_declared_qcow2_over_zeros_is_malformed_with_a_mismatch_finding()
    {
        UploadInspection inspection = await InspectWithEveryChunkSizeAsync(new byte[3000], new UploadInspectionOptions { DeclaredFormat = ImageFormat.Qcow2 });

        Assert.Equal(TrustReason.MalformedHeader, inspection.Reason);
        Assert.Contains(inspection.Findings, f => f.Code == FindingCodes.FormatMismatch);
        Assert.Contains(inspection.Findings, f => f.Code == FindingCodes.MalformedHeader);
    }

    [Fact]
    public async Task Inspect_copies_every_byte_to_the_destination_and_hashes_them()
    {
        byte[] data = RandomNumberGenerator.GetBytes(300_000);
        using var destination = new MemoryStream();
        var reader = ChunkedPipeReader.Over(data, 7919);

        UploadInspection inspection = await ImageUploadInspector.InspectAsync(reader, destination, new UploadInspectionOptions { ComputeSha256 = true });

        Assert.Equal(data, destination.ToArray());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(data)), inspection.Sha256);
    }

    [Fact]
    public async Task Inspect_canceled_before_start_throws()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            async () => await ImageUploadInspector.InspectAsync(ChunkedPipeReader.Over(new byte[100], 10), null, cts.Token));
    }

    [Fact]
    public async Task Inspect_canceled_mid_stream_throws_and_stops_reading()
    {
        using var cts = new CancellationTokenSource();
        var reader = ChunkedPipeReader.PrefixThenZeros([], TwoGiB, 4096);
        reader.AfterChunk = produced =>
        {
            if (produced >= 1024 * 1024)
            {
                cts.Cancel();
            }
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            async () => await ImageUploadInspector.InspectAsync(reader, null, cts.Token));
        Assert.Equal(1024 * 1024, reader.Produced);
    }

    [Fact]
    public async Task Inspect_pending_read_canceled_throws()
    {
        var reader = ChunkedPipeReader.Over(new byte[100_000], 1000);
        reader.CancelPendingRead();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await ImageUploadInspector.InspectAsync(reader));
    }

    [Fact]
    public async Task Inspect_pending_read_canceled_on_a_real_pipe_leaves_the_reader_usable()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(new byte[1000]);
        pipe.Reader.CancelPendingRead();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await ImageUploadInspector.InspectAsync(pipe.Reader));

        ReadResult next = await pipe.Reader.ReadAsync();
        Assert.Equal(1000, next.Buffer.Length);
        pipe.Reader.AdvanceTo(next.Buffer.End);
    }

    [Fact]
    public async Task Inspect_over_a_real_pipe_matches_the_chunked_reader()
    {
        byte[] data = RandomNumberGenerator.GetBytes(200_000);
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 8192, resumeWriterThreshold: 4096, useSynchronizationContext: false));
        Task writer = Task.Run(async () =>
        {
            for (int offset = 0; offset < data.Length; offset += 1237)
            {
                await pipe.Writer.WriteAsync(data.AsMemory(offset, Math.Min(1237, data.Length - offset)));
            }

            await pipe.Writer.CompleteAsync();
        });

        UploadInspection viaPipe = await ImageUploadInspector.InspectAsync(pipe.Reader);
        await writer;
        UploadInspection viaChunks = await InspectAsync(data, 4096);

        Assert.Equal(Describe(viaChunks), Describe(viaPipe));
    }

    [Fact]
    public async Task Inspect_reader_failure_propagates()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(new byte[1000]);
        await pipe.Writer.CompleteAsync(new IOException("connection reset"));

        await Assert.ThrowsAsync<IOException>(async () => await ImageUploadInspector.InspectAsync(pipe.Reader));
    }

    [Fact]
    public void Options_reject_windows_out_of_range()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new UploadInspectionOptions { HeadWindowLength = 511 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new UploadInspectionOptions { HeadWindowLength = UploadInspectionOptions.MaxWindowLength + 1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new UploadInspectionOptions { TailWindowLength = -1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new UploadInspectionOptions { ExpectedLength = -1 });
    }

    /// <summary>A raw guest disk whose guest wrote a qcow2 header (made by qemu-img) naming <paramref name="backing"/> into sector 0.</summary>
    internal static byte[] GuestDiskWithQcow2Header(string backing)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", backing, "-F", "raw", "evil.qcow2", "1M");
        byte[] header = File.ReadAllBytes(dir["evil.qcow2"]).AsSpan(0, 4096).ToArray();
        byte[] disk = new byte[1024 * 1024];
        header.CopyTo(disk, 0);
        Assert.Equal(0x514649FBu, BinaryPrimitives.ReadUInt32BigEndian(disk));
        return disk;
    }

    private static int FindExtension(byte[] qcow2, uint type)
    {
        int offset = (int)BinaryPrimitives.ReadUInt32BigEndian(qcow2.AsSpan(100));
        while (true)
        {
            uint found = BinaryPrimitives.ReadUInt32BigEndian(qcow2.AsSpan(offset));
            Assert.NotEqual(0u, found);
            if (found == type)
            {
                return offset;
            }

            offset += 8 + (int)((BinaryPrimitives.ReadUInt32BigEndian(qcow2.AsSpan(offset + 4)) + 7) & ~7u);
        }
    }

    private static byte[] Replace(byte[] image, string from, string to)
    {
        byte[] needle = Encoding.ASCII.GetBytes(from);
        int at = image.AsSpan().IndexOf(needle);
        Assert.True(at > 0);
        Encoding.ASCII.GetBytes(to).CopyTo(image, at);
        return image;
    }

    private sealed class TrustEverything : IImageTrust
    {
        public bool IsTrusted(ImageReference reference, string? canonicalPath) => true;
    }
}
