using System;
using System.Buffers.Binary;
using System.IO;
using BackingChain.Formats.Qcow2;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Formats;

/// <summary>
/// The qcow2 header reader on images made by qemu-img, then byte-patched into what qemu-img cannot make.
/// Each hostile case names the error qemu 7.2 gives for the same bytes, as qemu-img 7.2 prints it.
/// </summary>
public sealed class Qcow2HeaderTests
{
    private static byte[] Create(ScratchDirectory dir, string name, string[] options, string? size = null)
    {
        QemuImg.Run(dir.Path, ["create", "-q", "-f", "qcow2", .. options, name, .. (size is null ? Array.Empty<string>() : [size])]);
        return File.ReadAllBytes(dir[name]);
    }

    private static byte[] Overlay(ScratchDirectory dir, string compat = "1.1")
    {
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        return Create(dir, "overlay.qcow2", ["-o", $"compat={compat}", "-b", "base.raw", "-F", "raw"]);
    }

    [QemuImgFact]
    public void Reads_every_field_of_a_v3_overlay_as_qemu_wrote_it()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);

        Qcow2Header header = Qcow2Header.Parse(image);

        // qemu-img 7.2's v3 overlay -> ext at 0x70, feature table, end marker, name at 0x210.
        Assert.Equal(3u, header.Version);
        Assert.Equal(0x210UL, header.BackingFileOffset);
        Assert.Equal(8u, header.BackingFileSize);
        Assert.Equal(16u, header.ClusterBits);
        Assert.Equal(1048576UL, header.Size);
        Assert.Equal(112u, header.HeaderLength);
        Assert.Equal(4u, header.RefcountOrder);
        Assert.Equal(Qcow2CompressionType.Zlib, header.CompressionType);
        Assert.Equal("base.raw", header.GetBackingFileName(image));
        Assert.Equal("raw", header.GetBackingFormat(image));
        Assert.Null(header.GetExternalDataFileName(image));
        Assert.False(header.IsDirty);
        Assert.Equal(0, header.UnknownExtensionCount);
        Assert.True(header.FeatureNameTableRange.End.Value - header.FeatureNameTableRange.Start.Value == 8 * 48);
    }

    [QemuImgFact]
    public void Try_parse_says_how_many_bytes_it_needs_and_reads_on_until_the_header_parses()
    {
        using var dir = new ScratchDirectory();
        // An 812-byte backing name: qemu-img puts it after the header extensions, so it ends past the 512 bytes qemu's
        // probe reads; given less, the header reader must ask for more rather than fail.
        string folder = string.Join('/', new string('a', 200), new string('b', 200), new string('c', 200), new string('d', 200));
        Directory.CreateDirectory(Path.Combine(dir.Path, folder));
        string name = folder + "/base.raw";
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", name, "1M");
        byte[] image = Create(dir, "long.qcow2", ["-b", name, "-F", "raw"]);
        var info = QemuImg.Info(dir.Path, "long.qcow2");
        Assert.Equal(name, (string)info["backing-filename"]!);

        int length = 512;
        int calls = 0;
        Qcow2Header header;
        HeaderError error;
        int needed;
        while (!Qcow2Header.TryParse(image.AsSpan(0, length), out header, out error, out needed))
        {
            calls++;
            Assert.Equal(HeaderError.Truncated, error);
            Assert.True(needed > length, $"asked for {needed} bytes after being given {length}");
            Assert.True(needed <= image.Length, $"asked for {needed} bytes of a {image.Length}-byte file");
            Assert.True(calls < 8, "the parse keeps asking for more");
            length = needed;
        }

        Assert.Equal(0, needed);
        Assert.True(calls >= 1, "the name was expected past the first 512 bytes");
        Assert.True(length > 512 + 300, $"parsed with {length} bytes, before the whole name was given");
        Assert.Equal(name, header.GetBackingFileName(image.AsSpan(0, length)));
        Assert.Equal("raw", header.GetBackingFormat(image.AsSpan(0, length)));
        Assert.Equal((ulong)(long)info["virtual-size"]!, header.VirtualSize);

        // A bad header says nothing about length.
        byte[] bad = (byte[])image.Clone();
        bad[0] = 0;
        Assert.False(Qcow2Header.TryParse(bad, out _, out HeaderError badError, out int badNeeded));
        Assert.Equal(HeaderError.BadMagic, badError);
        Assert.Equal(0, badNeeded);
    }

    [QemuImgFact]
    public void Reads_a_v2_overlay()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir, "0.10");

        Qcow2Header header = Qcow2Header.Parse(image);

        Assert.Equal(2u, header.Version);
        Assert.Equal(72u, header.HeaderLength);
        Assert.Equal(0x60UL, header.BackingFileOffset);
        Assert.Equal("base.raw", header.GetBackingFileName(image));
        Assert.Equal("raw", header.GetBackingFormat(image));
        Assert.Equal(16, header.RefcountBits);
    }

    [QemuImgFact]
    public void Reads_features_data_file_and_encryption_extensions()
    {
        using var dir = new ScratchDirectory();
        byte[] features = Create(dir, "f.qcow2", ["-o", "extended_l2=on,lazy_refcounts=on,compression_type=zstd,refcount_bits=64"], "1M");
        byte[] dataFile = Create(dir, "d.qcow2", ["-o", "data_file=d.raw,data_file_raw=on"], "1M");
        byte[] luks = Create(dir, "l.qcow2", ["--object", "secret,id=s0,data=123456", "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10"], "1M");

        Qcow2Header f = Qcow2Header.Parse(features);
        Assert.Equal(Qcow2IncompatibleFeatures.CompressionType | Qcow2IncompatibleFeatures.ExtendedL2, f.IncompatibleFeatures);
        Assert.True(f.HasLazyRefcounts);
        Assert.Equal(64, f.RefcountBits);
        Assert.Equal(Qcow2CompressionType.Zstd, f.CompressionType);

        Qcow2Header d = Qcow2Header.Parse(dataFile);
        Assert.True(d.HasExternalDataFile);
        Assert.True(d.IsExternalDataRaw);
        Assert.Equal("d.raw", d.GetExternalDataFileName(dataFile));

        Qcow2Header l = Qcow2Header.Parse(luks);
        Assert.Equal(Qcow2EncryptionMethod.Luks, l.CryptMethod);
        Assert.True(l.HasEncryptionHeader);
        Assert.Equal(0UL, l.EncryptionHeaderOffset % (ulong)l.ClusterSize);
    }

    public static TheoryData<string, int, uint, HeaderError> HostilePatches => new()
    {
        // What qemu-img 7.2 says for the same bytes.
        { "cluster_bits 22: Unsupported cluster size: 2^22", 20, 22u, HeaderError.InvalidSize },
        { "cluster_bits 8", 20, 8u, HeaderError.InvalidSize },
        { "header_length 96: qcow2 header too short", 100, 96u, HeaderError.InvalidSize },
        { "header_length 108: Header extension too large", 100, 108u, HeaderError.InvalidExtension },
        { "header_length beyond the cluster", 100, 0x20000u, HeaderError.InvalidSize },
        { "version 4: Unsupported qcow2 version 4", 4, 4u, HeaderError.UnsupportedVersion },
        { "version 1 is qcow, not qcow2", 4, 1u, HeaderError.UnsupportedVersion },
        { "refcount_order 7", 96, 7u, HeaderError.InvalidSize },
        { "crypt_method 3", 32, 3u, HeaderError.UnsupportedFeature },
        { "no refcount table", 56, 0u, HeaderError.InvalidSize },
        { "too many snapshots", 60, 65537u, HeaderError.InvalidSize },
        { "L1 too small for the size", 36, 0u, HeaderError.InvalidSize },
        { "L1 too large", 36, 0x0FFFFFFFu, HeaderError.InvalidSize },
        { "backing name too long", 16, 1024u, HeaderError.InvalidSize },
    };

    [QemuImgTheory]
    [MemberData(nameof(HostilePatches))]
    public void Rejects_hostile_header_fields_with_a_typed_error(string label, int offset, uint value, HeaderError expected)
    {
        _ = label;
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(offset), value);

        Assert.False(Qcow2Header.TryParse(image, out _, out HeaderError error));
        Assert.Equal(expected, error);
        ImageFormatException thrown = Assert.Throws<ImageFormatException>(() => Qcow2Header.Parse(image));
        Assert.Equal(expected, thrown.Error);
    }

    [QemuImgFact]
    public void Rejects_a_backing_file_offset_beyond_the_first_cluster()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(8), 0x10008);

        Assert.False(Qcow2Header.TryParse(image, out _, out HeaderError error));
        Assert.Equal(HeaderError.InvalidOffset, error); // "Invalid backing file offset"
    }

    [QemuImgFact]
    public void Rejects_misaligned_and_overflowing_table_offsets()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);
        foreach (int field in new[] { 40, 48, 64 })
        {
            byte[] copy = (byte[])image.Clone();
            BinaryPrimitives.WriteUInt64BigEndian(copy.AsSpan(field), 0x10001);
            if (field == 64)
            {
                BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(60), 1); // a snapshot table must exist to be checked
            }

            Assert.False(Qcow2Header.TryParse(copy, out _, out HeaderError misaligned));
            Assert.Equal(HeaderError.InvalidOffset, misaligned);

            BinaryPrimitives.WriteUInt64BigEndian(copy.AsSpan(field), ulong.MaxValue & ~0xFFFFUL);
            Assert.False(Qcow2Header.TryParse(copy, out _, out HeaderError overflow));
            Assert.Equal(HeaderError.InvalidOffset, overflow);
        }
    }

    [QemuImgFact]
    public void Reports_unknown_incompatible_features_by_name_from_the_feature_table()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);
        image[79] |= 1 << 5; // incompatible bit 5

        ImageFormatException thrown = Assert.Throws<ImageFormatException>(() => Qcow2Header.Parse(image));
        Assert.Equal(HeaderError.UnsupportedFeature, thrown.Error);

        // qemu-img says exactly this for the same bytes.
        (int exit, _, string stderr) = QemuImg.TryRun(dir.Path, "info", "overlay.qcow2");
        File.WriteAllBytes(dir["patched.qcow2"], image);
        (exit, _, stderr) = QemuImg.TryRun(dir.Path, "info", "patched.qcow2");
        Assert.NotEqual(0, exit);
        Assert.Contains(thrown.Message, stderr, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void An_unknown_feature_is_reported_before_a_bad_table_as_qemu_checks_them()
    {
        // qcow2_do_open checks the feature words before it validates the tables: with both wrong, the feature wins.
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);
        image[79] |= 1 << 5; // incompatible bit 5
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(40), 0x10001); // l1_table_offset, not cluster-aligned
        File.WriteAllBytes(dir["patched.qcow2"], image);

        ImageFormatException thrown = Assert.Throws<ImageFormatException>(() => Qcow2Header.Parse(image));
        (int exit, _, string stderr) = QemuImg.TryRun(dir.Path, "info", "patched.qcow2");
        Assert.NotEqual(0, exit);
        Assert.Contains("Unsupported qcow2 feature", stderr, StringComparison.Ordinal);
        Assert.Equal(HeaderError.UnsupportedFeature, thrown.Error);
        Assert.Contains(thrown.Message, stderr, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void Ignores_unknown_compatible_bits_as_qemu_does()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);
        image[87] |= 1 << 5; // compatible bit 5

        Assert.True(Qcow2Header.TryParse(image, out Qcow2Header header, out _));
        Assert.Equal((Qcow2CompatibleFeatures)(1UL << 5), header.CompatibleFeatures);
    }

    [QemuImgFact]
    public void Rejects_a_backing_format_of_16_bytes_or_more()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);
        // The backing-format extension is the first one, at header_length (0x70): u32 magic, u32 length.
        Assert.Equal(0xE2792ACAu, BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(0x70)));
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(0x74), 16);

        Assert.False(Qcow2Header.TryParse(image, out _, out HeaderError error));
        Assert.Equal(HeaderError.InvalidExtension, error);
    }

    public static TheoryData<string, uint, int, int, ulong, bool> RefusedExtensionPatches => new()
    {
        // image kind, extension magic, offset in its payload, width in bytes, value written, whether qemu-img refuses it too
        { "bitmaps", 0x23852875, 4, 4, 1, true },            // the reserved word is not zero
        { "bitmaps", 0x23852875, 0, 4, 0, true },            // no bitmaps in a bitmaps extension
        { "bitmaps", 0x23852875, 16, 8, 0x10200, true },     // the bitmap directory is not cluster aligned
        { "luks", 0x0537BE77, 0, 8, 0x10200, true },         // the LUKS header is not cluster aligned
        { "luks", 0x0537BE77, 8, 8, ulong.MaxValue, false }, // ours: offset + length overflow (qemu-img info opens
                                                             // the image without I/O and never adds them)
    };

    [QemuImgTheory]
    [MemberData(nameof(RefusedExtensionPatches))]
    public void Rejects_bitmaps_and_encryption_extensions_that_qemu_refuses(string kind, uint magic, int field, int width, ulong value, bool qemuRefuses)
    {
        using var dir = new ScratchDirectory();
        byte[] image = kind == "luks"
            ? Create(dir, "image.qcow2", ["--object", "secret,id=s0,data=123456", "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10"], "1M")
            : Create(dir, "image.qcow2", [], "1M");
        if (kind == "bitmaps")
        {
            QemuImg.Run(dir.Path, "bitmap", "--add", "image.qcow2", "b0");
            image = File.ReadAllBytes(dir["image.qcow2"]);
        }

        Assert.True(Qcow2Header.TryParse(image, out _, out HeaderError before), $"{kind} as made: {before}");
        int payload = ExtensionPayload(image, magic);
        if (width == 4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(payload + field), (uint)value);
        }
        else
        {
            BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(payload + field), value);
        }

        File.WriteAllBytes(dir["patched.qcow2"], image);

        Assert.False(Qcow2Header.TryParse(image, out _, out HeaderError error));
        Assert.Equal(HeaderError.InvalidExtension, error);
        Assert.Equal(qemuRefuses, QemuImg.TryRun(dir.Path, "info", "-f", "qcow2", "patched.qcow2").ExitCode != 0);
    }

    /// <summary>Where the payload of the header extension <paramref name="magic"/> starts (v3: the extensions follow header_length).</summary>
    private static int ExtensionPayload(byte[] image, uint magic)
    {
        int offset = (int)BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(100));
        while (true)
        {
            uint found = BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(offset));
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(offset + 4));
            Assert.NotEqual(0u, found);
            if (found == magic)
            {
                return offset + 8;
            }

            offset += 8 + ((length + 7) & ~7);
        }
    }

    [QemuImgFact]
    public void Rejects_an_extension_longer_than_its_area()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(0x74), 0x7FFFFFFF);

        Assert.False(Qcow2Header.TryParse(image, out _, out HeaderError error));
        Assert.Equal(HeaderError.InvalidExtension, error);
    }

    [QemuImgFact]
    public void Rejects_a_repeated_extension_where_qemu_silently_keeps_the_last()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir, "0.10");
        // v2 overlay: backing-format extension at 0x48 ("raw", padded to 8), end marker at 0x58, name at 0x60.
        // Write a second backing-format extension ("qcow2") over the end marker; the name moves to 0x70.
        byte[] second = [0xE2, 0x79, 0x2A, 0xCA, 0, 0, 0, 5, (byte)'q', (byte)'c', (byte)'o', (byte)'w', (byte)'2', 0, 0, 0];
        second.CopyTo(image, 0x58);
        "base.raw"u8.CopyTo(image.AsSpan(0x70));
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(8), 0x70);
        File.WriteAllBytes(dir["dup.qcow2"], image);

        Assert.False(Qcow2Header.TryParse(image, out _, out HeaderError error));
        Assert.Equal(HeaderError.InvalidExtension, error);
        Assert.Equal("qcow2", (string)QemuImg.Info(dir.Path, "dup.qcow2")["backing-filename-format"]!); // qemu keeps the last
    }

    [QemuImgFact]
    public void A_backing_name_cut_by_the_end_of_the_file_is_truncated()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);

        HeaderError error = Qcow2Header.Read(image.AsSpan(0, 0x214), dataReachesEndOfFile: true, out _, out _);

        Assert.Equal(HeaderError.Truncated, error);
    }

    [QemuImgFact]
    public void Asks_for_more_bytes_when_given_less_than_the_header_region()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);

        Assert.False(Qcow2Header.TryParse(image.AsSpan(0, 64), out _, out HeaderError tooShort));
        Assert.Equal(HeaderError.Truncated, tooShort);

        // The backing name lies at 0x210; 0x200 bytes hold the header and extensions but not the name.
        HeaderError error = Qcow2Header.Read(image.AsSpan(0, 0x200), dataReachesEndOfFile: false, out _, out int required);
        Assert.Equal(HeaderError.Truncated, error);
        Assert.True(required > 0x200 && required <= 0x218, $"asked for {required} bytes");
    }

    [Fact]
    public void Rejects_every_truncation_and_random_bytes_without_crashing()
    {
        var random = new Random(20261125);
        byte[] buffer = new byte[4096];
        for (int i = 0; i < 20000; i++)
        {
            random.NextBytes(buffer);
            BinaryPrimitives.WriteUInt32BigEndian(buffer, 0x514649FB);
            buffer[7] = (byte)(2 + (i & 1));
            int length = random.Next(buffer.Length + 1);
            ReadOnlySpan<byte> data = buffer.AsSpan(0, length);
            bool parsed = Qcow2Header.TryParse(data, out Qcow2Header header, out HeaderError error);
            HeaderError atEndOfFile = Qcow2Header.Read(data, dataReachesEndOfFile: true, out _, out _);

            // One verdict from the entry points, and an error exactly when nothing parsed. Knowing that the data is
            // the whole file can only turn "need more bytes" into a final answer, never change any other answer.
            Assert.Equal(parsed, error == HeaderError.None);
            Assert.True(atEndOfFile == error || error == HeaderError.Truncated, $"{error} for a span, {atEndOfFile} for the whole file");
            HeaderError thrown = HeaderError.None;
            try
            {
                _ = Qcow2Header.Parse(data);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex.Error;
            }

            Assert.Equal(error, thrown);
            if (length < 72)
            {
                // Shorter than the version 2 header: nothing can parse, and the answer is "too short", not garbage.
                Assert.Equal(HeaderError.Truncated, error);
            }

            if (parsed)
            {
                Assert.InRange(header.Version, 2u, 3u);
                Assert.InRange(header.ClusterBits, 9u, 21u);
            }
        }
    }

    [QemuImgFact]
    public void Parsing_allocates_nothing()
    {
        using var dir = new ScratchDirectory();
        byte[] image = Overlay(dir);
        Assert.True(Qcow2Header.TryParse(image, out _, out _)); // warm up

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            _ = Qcow2Header.TryParse(image, out _, out _);
        }

        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(before, after);
    }
}
