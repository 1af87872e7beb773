using System;
using System.Buffers.Binary;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Formats;
using BackingChain.Streaming;
using BackingChain.Tests.Formats;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;
using static BackingChain.Tests.Streaming.UploadTestHelpers;

namespace BackingChain.Tests.Trust;

/// <summary>
/// A monolithicSparse or streamOptimized VMDK carries a descriptor inside itself. qemu 7.2 ignores its extent lines
/// (the file is its own extent), so it opens every image here; other readers of the file follow them. The
/// untrusted-image posture refuses an embedded descriptor that names anything but the image itself, in a file chain
/// and in an upload, with a finding naming the check; the host posture keeps qemu's view.
/// </summary>
public sealed class VmdkEmbeddedDescriptorTests
{
    private const int DescriptorOffsetField = 28;
    private const int DescriptorSizeField = 36;
    private const int EmbeddedDescriptor = 0x200;

    /// <summary>Subformat, what replaces the image's extent line (or, for "appended", the descriptor the header points at), and a word the finding must contain.</summary>
    public static TheoryData<string, string, string> Cases() => new()
    {
        { "monolithicSparse", "RW 2048 FLAT \"/etc/passwd\" 0", "FLAT extent" },
        { "monolithicSparse", "RW 2048 SPARSE \"../other/disk.vmdk\"", "not the image itself" },
        { "monolithicSparse", "RW 2048 SPARSE \"/var/lib/images/disk.vmdk\"", "not the image itself" },
        { "monolithicSparse", "RW 1024 SPARSE \"image.vmdk\"\nRW 1024 SPARSE \"image-s002.vmdk\"", "2 extents" },
        { "monolithicSparse", "RDONLY 2048 VMFS \"/dev/sda\"", "VMFS extent" },
        { "monolithicSparse", "RW 4096 SPARSE \"image.vmdk\"", "4096 sectors" },
        { "monolithicSparse", "RW 2048 SPARSE image.vmdk", "cannot be read" },
        { "streamOptimized", "RW 2048 ZERO \"image.vmdk\"\nRW 2048 FLAT \"/etc/shadow\" 0", "FLAT extent" },
        { "streamOptimized", "createType=\"monolithicFlat\"", "createType \"monolithicFlat\"" },
        { "hidden", "RW 2048 FLAT \"/etc/passwd\" 0", "FLAT extent" },
        { "appended", "RW 2048 FLAT \"/etc/passwd\" 0", "FLAT extent" },
    };

    [QemuImgTheory]
    [MemberData(nameof(Cases))]
    public async Task The_untrusted_posture_refuses_an_embedded_descriptor_naming_other_files(string kind, string line, string named)
    {
        using var dir = new ScratchDirectory();
        byte[] bytes = Make(dir, kind, line);
        File.WriteAllBytes(dir["image.vmdk"], bytes);

        // qemu opens it, and sees one extent, the image itself.
        var info = QemuImg.Info(dir.Path, "image.vmdk", format: "vmdk");
        Assert.Single(info["format-specific"]!["data"]!["extents"]!.AsArray());

        var untrusted = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] };
        TrustReport host = new ImageChainResolver().Check(dir["image.vmdk"]);
        TrustReport file = new ImageChainResolver(new ImageChainResolverOptions { Policy = untrusted }).Check(dir["image.vmdk"], ImageFormat.Vmdk);
        UploadInspection upload = await InspectAsync(bytes, 4096, new UploadInspectionOptions { Policy = untrusted, DeclaredFormat = ImageFormat.Vmdk, Name = dir["image.vmdk"] });

        Assert.True(host.IsSafe, JudgeTableTests.Describe(host));
        Assert.Equal(TrustReason.UnsafeStructure, file.Reason);
        Assert.Contains(file.Findings, f => f.Code == FindingCodes.MalformedHeader && f.Message.Contains(named, StringComparison.Ordinal));
        Assert.Equal(TrustReason.UnsafeStructure, upload.Reason);
        Assert.Contains(upload.Findings, f => f.Message.Contains(named, StringComparison.Ordinal));
    }

    [QemuImgTheory]
    [InlineData("monolithicSparse")]
    [InlineData("streamOptimized")]
    public async Task Images_qemu_img_makes_are_accepted(string subformat)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "-o", $"subformat={subformat}", "image.vmdk", "1M");

        // Renamed after it was made: the embedded descriptor still names the old file, and that is no reason to refuse it.
        File.Move(dir["image.vmdk"], dir["renamed.vmdk"]);
        var untrusted = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] };
        TrustReport file = new ImageChainResolver(new ImageChainResolverOptions { Policy = untrusted }).Check(dir["renamed.vmdk"], ImageFormat.Vmdk);
        UploadInspection upload = await InspectAsync(File.ReadAllBytes(dir["renamed.vmdk"]), 4096, new UploadInspectionOptions { Policy = untrusted, DeclaredFormat = ImageFormat.Vmdk, Name = "/uploads/x.vmdk" });

        Assert.True(file.IsSafe, JudgeTableTests.Describe(file));
        Assert.True(upload.IsAccepted, upload.ToString());
    }

    [Theory]
    [InlineData("RW 18014398509481984 FLAT \"flat.img\" 0")]   // 2^54 sectors: the size in bytes overflows
    [InlineData("RW 9223372036854775807 FLAT \"flat.img\" 0")] // LONG_MAX sectors
    public async Task Extent_size_that_overflows_is_a_typed_error(string line)
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["flat.img"], new byte[4096]);
        File.WriteAllText(dir["d.vmdk"], "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n" + line + "\n");
        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vmdk, dir["d.vmdk"]);
        Assert.Equal(HeaderError.InvalidSize, facts.Error);
    }

    /// <summary>A qemu-img-made image whose embedded descriptor was rewritten.</summary>
    private static byte[] Make(ScratchDirectory dir, string kind, string line)
    {
        string subformat = kind == "streamOptimized" ? "streamOptimized" : "monolithicSparse";
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "-o", $"subformat={subformat}", "image.vmdk", "1M");
        byte[] bytes = File.ReadAllBytes(dir["image.vmdk"]);
        string text = Encoding.ASCII.GetString(bytes, EmbeddedDescriptor, 20 * 512);
        text = text[..text.IndexOf('\0', StringComparison.Ordinal)];
        string own = "RW 2048 SPARSE \"image.vmdk\"";
        Assert.Contains(own, text, StringComparison.Ordinal);

        string patched;
        if (kind == "hidden")
        {
            // qemu's text ends at the first NUL; a reader of the whole area sees the line after it.
            patched = text + "\0" + line + "\n";
        }
        else if (kind == "appended")
        {
            // The header points the descriptor at a sector past qemu's data; qemu keeps reading the one at 0x200.
            byte[] appended = new byte[bytes.Length + 512];
            bytes.CopyTo(appended, 0);
            byte[] descriptor = Encoding.ASCII.GetBytes(text.Replace(own, line, StringComparison.Ordinal));
            Assert.True(descriptor.Length < 512);
            descriptor.CopyTo(appended, bytes.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(appended.AsSpan(DescriptorOffsetField), (ulong)bytes.Length / 512);
            BinaryPrimitives.WriteUInt64LittleEndian(appended.AsSpan(DescriptorSizeField), 1);
            return appended;
        }
        else if (line.StartsWith("createType", StringComparison.Ordinal))
        {
            patched = text.Replace("createType=\"streamOptimized\"", line, StringComparison.Ordinal);
        }
        else
        {
            patched = text.Replace(own, line, StringComparison.Ordinal);
        }

        byte[] replacement = Encoding.ASCII.GetBytes(patched);
        Assert.True(replacement.Length < 20 * 512);
        Array.Clear(bytes, EmbeddedDescriptor, 20 * 512);
        replacement.CopyTo(bytes, EmbeddedDescriptor);
        return bytes;
    }
}
