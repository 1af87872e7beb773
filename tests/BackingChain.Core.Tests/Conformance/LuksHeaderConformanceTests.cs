using System;
using System.Buffers.Binary;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;
using static BackingChain.Tests.Streaming.UploadTestHelpers;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// LUKS1 headers whose algorithm names qemu 7.2 does not know, or whose cipher name, cipher mode or hash field has
/// no NUL: qemu refuses to open them even without a key, so they are refused here in every posture, with qemu's
/// message naming the check; the names qemu accepts are accepted with qemu's report. The oracle is
/// <c>qemu-img info --output=json -f luks FILE</c> (and <c>-f qcow2</c> for an encrypted qcow2) on images qemu-img
/// made and these tests byte-patched.
/// </summary>
public sealed class LuksHeaderConformanceTests
{
    private const int CipherNameField = 8;
    private const int CipherModeField = 40;
    private const int HashSpecField = 72;
    private const int KeyBytesField = 108;
    private const int FieldLength = 32;

    /// <summary>Patches: cipher name, cipher mode, hash (null: unchanged; a string of 32 characters fills the field with no NUL), key bytes (0: unchanged).</summary>
    public static TheoryData<string?, string?, string?, int> Patches => new()
    {
        // Accepted by qemu.
        { "cast5", "cbc-plain", null, 16 },
        { "cast5", "cbc-essiv:md5", null, 16 },
        { "aes", "ctr-plain64", null, 24 },
        { "aes", "ecb-plain", null, 32 },
        { "aes", "xts-essiv:sha256", null, 0 },
        { "aes", "xts-plain:sha256", null, 0 },
        { "serpent", "cbc-essiv:sha256", "ripemd160", 16 },
        { null, null, "md5", 0 },
        { null, "xts-plain64\0trailing bytes", null, 0 },

        // Unterminated fields.
        { new string('a', FieldLength), null, null, 0 },
        { "aes" + new string(' ', FieldLength - 3), null, null, 0 },
        { null, new string('x', FieldLength), null, 0 },
        { null, null, new string('y', FieldLength), 0 },

        // Names qemu 7.2 does not know, or a specification it cannot use.
        { "sm4", null, null, 0 },
        { "cast5", null, null, 0 },
        { "", null, null, 0 },
        { "AES", null, null, 0 },
        { "aes", "ctr-plain64", null, 0 },
        { "aes", "xts-plain64", null, 40 },
        { null, "gcm-plain64", null, 0 },
        { null, "-plain64", null, 0 },
        { null, "xtsplain64", null, 0 },
        { null, "xts-benbi", null, 0 },
        { null, "xts-plain64-x", null, 0 },
        { null, "xts-plain64:whirlpool", null, 0 },
        { null, "xts-plain64:sha1:x", null, 0 },
        { null, "xts-essiv", null, 0 },
        { null, "xts-essiv:sha1", null, 0 },
        { "twofish", "cbc-essiv:sha512", null, 32 },
        { "serpent", "cbc-essiv:sha224", null, 32 },
        { "cast5", "cbc-essiv:sha256", null, 16 },
        { null, null, "sha3-256", 0 },
        { null, null, "SHA256", 0 },
        { null, null, "", 0 },
    };

    [QemuImgTheory]
    [MemberData(nameof(Patches))]
    public async Task A_luks_image_is_refused_exactly_where_qemu_refuses_it(string? cipher, string? mode, string? hash, int keyBytes)
    {
        using var dir = new ScratchDirectory();
        byte[] bytes = (byte[])LuksImage.Value.Clone();
        Patch(bytes, 0, cipher, mode, hash, keyBytes);
        File.WriteAllBytes(dir["image.luks"], bytes);

        string? qemuError = QemuError(dir, "image.luks", "luks");
        ImageChain declared = new ImageChainResolver().Resolve(dir["image.luks"], ImageFormat.Luks);
        ImageChain probed = new ImageChainResolver().Resolve(dir["image.luks"]);
        var untrusted = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir.Path] };
        TrustReport report = new ImageChainResolver(new ImageChainResolverOptions { Policy = untrusted }).Check(dir["image.luks"], ImageFormat.Luks);
        UploadInspection upload = await InspectAsync(bytes, 65536, new UploadInspectionOptions { Policy = untrusted, DeclaredFormat = ImageFormat.Luks, Name = dir["image.luks"] });

        if (qemuError is null)
        {
            Assert.Equal(ChainEnding.Complete, declared.Ending);
            Assert.Equal(ChainEnding.Complete, probed.Ending);
            Assert.True(report.IsSafe, BackingChain.Tests.Trust.JudgeTableTests.Describe(report));
            Assert.True(upload.IsAccepted, upload.ToString());
            Qcow2ConformanceTests.AssertSameInfo(dir.Path, "image.luks", backingChain: false, "luks");
            return;
        }

        foreach (ImageChain chain in new[] { declared, probed })
        {
            Assert.Equal(ChainEnding.Malformed, chain.Ending);
            Assert.Contains(qemuError, chain.ErrorMessage, StringComparison.Ordinal);
        }

        Assert.False(report.IsSafe);
        Assert.Contains(report.Findings, f => f.Code is FindingCodes.MalformedHeader or FindingCodes.UnsupportedFeature && f.Message.Contains(qemuError, StringComparison.Ordinal));
        Assert.False(upload.IsAccepted, upload.ToString());
    }

    public static TheoryData<string?, string?, string?> EncryptedQcow2Patches => new()
    {
        { null, null, "sha512" },
        { null, null, new string('z', FieldLength) },
        { null, null, "sha3-256" },
        { "des", null, null },
        { null, "xts-plain64:md4", null },
    };

    [QemuImgTheory]
    [MemberData(nameof(EncryptedQcow2Patches))]
    public void An_encrypted_qcow2_is_refused_exactly_where_qemu_refuses_its_luks_header(string? cipher, string? mode, string? hash)
    {
        using var dir = new ScratchDirectory();
        byte[] bytes = (byte[])EncryptedQcow2Image.Value.Clone();
        int luks = bytes.AsSpan().IndexOf(LuksMagic);
        Assert.True(luks > 0);
        Patch(bytes, luks, cipher, mode, hash, 0);
        File.WriteAllBytes(dir["image.qcow2"], bytes);

        string? qemuError = QemuError(dir, "image.qcow2", "qcow2");
        ImageChain chain = new ImageChainResolver().Resolve(dir["image.qcow2"], ImageFormat.Qcow2);
        if (qemuError is null)
        {
            Assert.Equal(ChainEnding.Complete, chain.Ending);
            Qcow2ConformanceTests.AssertSameInfo(dir.Path, "image.qcow2", backingChain: false, "qcow2");
        }
        else
        {
            Assert.Equal(ChainEnding.Malformed, chain.Ending);
            Assert.Contains(qemuError, chain.ErrorMessage, StringComparison.Ordinal);
        }
    }

    [QemuImgFact]
    public void The_header_parser_refuses_an_unterminated_field_with_a_typed_error()
    {
        byte[] bytes = (byte[])LuksImage.Value.Clone();
        Assert.True(BackingChain.Formats.Luks.Luks1Header.TryParse(bytes, out _, out _));

        Patch(bytes, 0, null, new string('m', FieldLength), null, 0);
        Assert.False(BackingChain.Formats.Luks.Luks1Header.TryParse(bytes, out _, out HeaderError error));
        Assert.Equal(HeaderError.InvalidText, error);
        ImageFormatException thrown = Assert.Throws<ImageFormatException>(() => BackingChain.Formats.Luks.Luks1Header.Parse(bytes));
        Assert.Equal(HeaderError.InvalidText, thrown.Error);
    }

    private static ReadOnlySpan<byte> LuksMagic => [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xBA, 0xBE];

    /// <summary>
    /// One qemu-img-made image of each kind per run, copied by every case: qemu-img spends about a second per image
    /// calibrating its key derivation, whatever the iteration time.
    /// </summary>
    private static readonly Lazy<byte[]> LuksImage = new(() => Create("luks", "key-secret=s0,iter-time=10"));

    private static readonly Lazy<byte[]> EncryptedQcow2Image = new(() => Create("qcow2", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10"));

    private static byte[] Create(string format, string options)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", format, "--object", "secret,id=s0,data=pw", "-o", options, "image", "1M");
        return File.ReadAllBytes(dir["image"]);
    }

    private static void Patch(byte[] bytes, int header, string? cipher, string? mode, string? hash, int keyBytes)
    {
        WriteField(bytes, header + CipherNameField, cipher);
        WriteField(bytes, header + CipherModeField, mode);
        WriteField(bytes, header + HashSpecField, hash);
        if (keyBytes != 0)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(header + KeyBytesField), (uint)keyBytes);
        }
    }

    /// <summary>Replaces a 32-byte text field: the text, then NULs (none when the text fills the field).</summary>
    private static void WriteField(byte[] bytes, int offset, string? text)
    {
        if (text is null)
        {
            return;
        }

        Span<byte> field = bytes.AsSpan(offset, FieldLength);
        field.Clear();
        Encoding.ASCII.GetBytes(text).CopyTo(field);
    }

    /// <summary>qemu's reason for refusing the image (after "Could not open '…': "), or null when it opens it.</summary>
    private static string? QemuError(ScratchDirectory dir, string file, string format)
    {
        (int exit, _, string stderr) = QemuImg.TryRun(dir.Path, "info", "--output=json", "-f", format, file);
        if (exit == 0)
        {
            return null;
        }

        string prefix = $"Could not open '{file}': ";
        int at = stderr.IndexOf(prefix, StringComparison.Ordinal);
        Assert.True(at >= 0, stderr);
        return stderr[(at + prefix.Length)..].Trim();
    }
}
