using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Text;
using BackingChain.Chain;
using BackingChain.Detection;
using BackingChain.Formats;
using BackingChain.Formats.Bochs;
using BackingChain.Formats.Cloop;
using BackingChain.Formats.Dmg;
using BackingChain.Formats.Luks;
using BackingChain.Formats.Parallels;
using BackingChain.Formats.Vdi;
using BackingChain.Formats.Vhdx;
using BackingChain.Formats.Vpc;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Walk;

namespace BackingChain.Tests.Formats;

/// <summary>
/// Parser-level checks for the VHD family and the read-only formats: qemu-made seeds, hostile byte patches
/// (a result or a HeaderError, never another exception or a hang), zero allocations on a warm parse, thorough
/// detection.
/// </summary>
public sealed class VhdFamilyParserTests
{
    private static readonly ImageChainResolverOptions NoFollow = new() { MaxDepth = 1, SourceProviders = [] };

    /// <summary>Seeds made by qemu-img (or by hand for formats it cannot create), with the declared format.</summary>
    private static List<(string Name, byte[] Bytes, ImageFormat Format)> Seeds(ScratchDirectory dir)
    {
        var seeds = new List<(string, byte[], ImageFormat)>();
        void Create(string file, string format, string options, string size, ImageFormat imageFormat)
        {
            QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-o", options, file, size);
            seeds.Add((file, File.ReadAllBytes(dir[file]), imageFormat));
        }

        Create("d.vhd", "vpc", "subformat=dynamic", "1M", ImageFormat.Vpc);
        Create("f.vhd", "vpc", "subformat=fixed", "1M", ImageFormat.Vpc);
        Create("x.vhdx", "vhdx", "subformat=dynamic", "1M", ImageFormat.Vhdx);
        Create("v.vdi", "vdi", "static=off", "1M", ImageFormat.Vdi);
        Create("p.hds", "parallels", "cluster_size=1M", "1M", ImageFormat.Parallels);
        seeds.Add(("diff.vhd", ImageBytes.VhdDifferencing(seeds[0].Item2, Guid.Empty, "p.vhd", ("W2ru", Encoding.Unicode.GetBytes(@".\p.vhd")), ("MacX", Encoding.UTF8.GetBytes("file:///p.vhd"))), ImageFormat.Vpc));
        seeds.Add(("diff.vhdx", ImageBytes.VhdxDifferencing(seeds[2].Item2, ("parent_linkage", "{x}"), ("relative_path", "p.vhdx")), ImageFormat.Vhdx));
        seeds.Add(("b.bochs", ImageBytes.Bochs(1 << 20, 256, 4096), ImageFormat.Bochs));
        seeds.Add(("c.cloop", ImageBytes.Cloop(65536, 16), ImageFormat.Cloop));
        seeds.Add(("x.dmg", ImageBytes.DmgWithPlist(2048), ImageFormat.Dmg));
        seeds.Add(("r.dmg", ImageBytes.DmgWithResourceFork(2048), ImageFormat.Dmg));
        return seeds;
    }

    [QemuImgFact]
    public void Hostile_byte_patches_give_a_result_or_a_header_error_never_a_crash()
    {
        using var dir = new ScratchDirectory();
        var random = new Random(20240717);
        var resolver = new ImageChainResolver(NoFollow);
        foreach ((string name, byte[] seed, ImageFormat format) in Seeds(dir))
        {
            // Interesting offsets: the headers, the VHDX structures, the tail (footers, trailers).
            int[] hot = [0, 0x40, 0x150, 0x200, 0x240, 0x600, 0x10000, 0x20000, 0x30000, 0x300000, 0x310000, 0x320000, seed.Length - 512, seed.Length - 20];
            for (int round = 0; round < 150; round++)
            {
                byte[] image = (byte[])seed.Clone();
                int patches = random.Next(1, 6);
                for (int p = 0; p < patches; p++)
                {
                    int at = Math.Clamp(hot[random.Next(hot.Length)] + random.Next(0, 600), 0, image.Length - 8);
                    ulong value = random.Next(4) switch { 0 => ulong.MaxValue, 1 => 0, 2 => (ulong)random.NextInt64(), _ => 1UL << random.Next(64) };
                    BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(at), value);
                }

                using var source = new MemoryImageSource(name, image);
                ImageChain declared = resolver.ResolveAsync(source, format).AsTask().GetAwaiter().GetResult();
                ImageChain probed = resolver.ResolveAsync(source).AsTask().GetAwaiter().GetResult();
                ReaderFault.AssertNone(declared);
                ReaderFault.AssertNone(probed);
                _ = ImageFormatDetector.DetectThorough(image.AsSpan(0, Math.Min(4096, image.Length)), image.AsSpan(Math.Max(0, image.Length - 1024)), image.Length, name);
            }

            // Truncations at every interesting size.
            foreach (int length in (int[])[0, 1, 7, 63, 64, 511, 512, 513, 1023, 1024, 4096, 0x10000, 0x30000, seed.Length / 2, seed.Length - 1])
            {
                if (length > seed.Length)
                {
                    continue;
                }

                using var source = new MemoryImageSource(name, seed.AsMemory(0, length));
                ReaderFault.AssertNone(resolver.ResolveAsync(source, format).AsTask().GetAwaiter().GetResult());
            }
        }
    }

    [QemuImgFact]
    public void Header_parsers_allocate_nothing_when_warm()
    {
        using var dir = new ScratchDirectory();
        List<(string Name, byte[] Bytes, ImageFormat Format)> seeds = Seeds(dir);
        byte[] vhd = seeds[0].Bytes, vhdx = seeds[2].Bytes, vdi = seeds[3].Bytes, par = seeds[4].Bytes;
        byte[] bochs = seeds[7].Bytes, cloop = seeds[8].Bytes, dmg = seeds[9].Bytes;
        byte[] locatorImage = ImageBytes.VhdxDifferencing(vhdx, ("relative_path", "p.vhdx"));
        byte[] luks1 = BuildLuks1();
        byte[] luks2 = BuildLuks2();

        void ParseAll()
        {
            Assert.True(VhdFooter.TryParse(vhd, out _, out _));
            Assert.True(VhdDynamicHeader.TryParse(vhd.AsSpan(512), out _, out _));
            Assert.True(VhdxHeader.TryParse(vhdx.AsSpan(0x10000), out _, out _));
            Assert.True(VhdxRegionTable.TryParse(vhdx.AsSpan(0x30000), out _, out _));
            Assert.True(VhdxMetadataTable.TryParse(vhdx.AsSpan(0x300000), out _, out _));
            Assert.True(VhdxParentLocator.TryParse(locatorImage.AsSpan(0x320000, 70), out _, out _));
            Assert.True(VdiHeader.TryParse(vdi, out _, out _));
            Assert.True(ParallelsHeader.TryParse(par, out _, out _));
            Assert.True(BochsHeader.TryParse(bochs, out _, out _));
            Assert.True(CloopHeader.TryParse(cloop, out _, out _));
            Assert.True(DmgTrailer.TryParse(dmg.AsSpan(dmg.Length - 512), out _, out _));
            Assert.True(Luks1Header.TryParse(luks1, out _, out _));
            Assert.True(Luks2Header.TryParse(luks2, out _, out _));
        }

        ParseAll();
        long before = GC.GetAllocatedBytesForCurrentThread();
        ParseAll();
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
    }

    [Fact]
    public void Vhd_footer_checksum_and_size_rules_follow_the_spec_and_qemu()
    {
        byte[] footer = new byte[512];
        Encoding.ASCII.GetBytes("conectix").CopyTo(footer, 0);
        Encoding.ASCII.GetBytes("qemu").CopyTo(footer, 28);
        BinaryPrimitives.WriteUInt64BigEndian(footer.AsSpan(48), 1048576);
        BinaryPrimitives.WriteUInt16BigEndian(footer.AsSpan(56), 31);
        footer[58] = 4;
        footer[59] = 17;
        BinaryPrimitives.WriteUInt32BigEndian(footer.AsSpan(60), 3);
        ImageBytes.FixVhdChecksum(footer, 64);

        VhdFooter parsed = VhdFooter.Parse(footer);
        Assert.Equal(31L * 4 * 17 * 512, parsed.VirtualSize); // "qemu": CHS (qemu-img 7.2 reports 1079296 for 1M)
        Encoding.ASCII.GetBytes("win ").CopyTo(footer, 28);
        ImageBytes.FixVhdChecksum(footer, 64);
        Assert.Equal(1048576, VhdFooter.Parse(footer).VirtualSize); // Hyper-V: current_size
        footer[100] ^= 1;
        Assert.False(VhdFooter.TryParse(footer, out _, out HeaderError error));
        Assert.Equal(HeaderError.BadChecksum, error);
    }

    [Fact]
    public void Thorough_detection_names_what_qemus_probe_misses()
    {
        // A fixed VHD: raw to qemu, vpc by its footer.
        byte[] fixedVhd = new byte[4096 + 512];
        byte[] footer = fixedVhd.AsSpan(4096).ToArray();
        Encoding.ASCII.GetBytes("conectix").CopyTo(footer, 0);
        BinaryPrimitives.WriteUInt64BigEndian(footer.AsSpan(16), ulong.MaxValue);
        BinaryPrimitives.WriteUInt32BigEndian(footer.AsSpan(60), 2);
        ImageBytes.FixVhdChecksum(footer, 64);
        footer.CopyTo(fixedVhd, 4096);
        ThoroughDetection vhd = Detect(fixedVhd, "disk.img");
        Assert.Equal(ImageFormat.Raw, vhd.QemuFormat);
        Assert.Equal(ImageFormat.Vpc, vhd.Format);
        Assert.True(vhd.DiffersFromQemu);
        Assert.False(vhd.IsPolyglot);

        // LUKS2: raw to qemu.
        ThoroughDetection luks2 = Detect(BuildLuks2(), "vol.img");
        Assert.Equal(ImageFormat.Raw, luks2.QemuFormat);
        Assert.Equal(ImageFormat.Luks, luks2.Format);
        Assert.Contains("LUKS2", luks2.Signatures[0].Description, StringComparison.Ordinal);

        // DMG by content, whatever the name; and a raw file named .dmg shows only a name signature.
        ThoroughDetection dmg = Detect(ImageBytes.DmgWithPlist(2048), "disk.img");
        Assert.Equal(ImageFormat.Raw, dmg.QemuFormat);
        Assert.Equal(ImageFormat.Dmg, dmg.Format);
        ThoroughDetection named = Detect(new byte[8192], "plain.dmg");
        Assert.Equal(ImageFormat.Dmg, named.QemuFormat);
        Assert.Equal(ImageFormat.Raw, named.Format);
        Assert.Equal(SignatureLocation.FileName, Assert.Single(named.Signatures).Location);

        // A VMDK descriptor with an empty line before version=: raw to qemu.
        byte[] descriptor = Encoding.ASCII.GetBytes("# Disk DescriptorFile\n\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"x-flat.vmdk\" 0\n");
        ThoroughDetection vmdk = Detect(descriptor, "x.vmdk");
        Assert.Equal(ImageFormat.Raw, vmdk.QemuFormat);
        Assert.Equal(ImageFormat.Vmdk, vmdk.Format);

        // A polyglot: a LUKS1 magic at the start and a fixed VHD footer at the end.
        byte[] polyglot = (byte[])fixedVhd.Clone();
        BuildLuks1().AsSpan(0, 592).CopyTo(polyglot);
        ThoroughDetection both = Detect(polyglot, "disk.img");
        Assert.Equal(ImageFormat.Luks, both.QemuFormat);
        Assert.True(both.IsPolyglot);
        Assert.Equal(ImageFormat.Unknown, both.Format);
    }

    [QemuImgTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_header_with_the_larger_sequence_number_is_used_as_qemu_uses_it(bool firstIsCurrent)
    {
        // The older header's log area overlaps the first region: read from it, the image would be refused. qemu
        // reads only the current header's log fields, so it opens the image; so must we.
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vhdx", "disk.vhdx", "8M");
        byte[] image = File.ReadAllBytes(dir["disk.vhdx"]);
        const int Header1 = 64 * 1024, Header2 = 128 * 1024, RegionTable = 192 * 1024;
        ulong firstRegion = BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(RegionTable + 16 + 16));
        int current = firstIsCurrent ? Header1 : Header2;
        int older = firstIsCurrent ? Header2 : Header1;
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(current + 8), 10);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(older + 8), 5);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(older + 68), 1024 * 1024); // log length
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(older + 72), firstRegion); // log offset
        foreach (int header in new[] { Header1, Header2 })
        {
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(header + 4), BackingChain.Formats.Vhdx.Crc32C.ComputeSkipping(image.AsSpan(header, 4096), 4));
        }

        File.WriteAllBytes(dir["patched.vhdx"], image);
        Assert.Equal(0, QemuImg.TryRun(dir.Path, "info", "patched.vhdx").ExitCode);
        BackingChain.Tests.Conformance.Qcow2ConformanceTests.AssertSameInfo(dir.Path, "patched.vhdx", backingChain: false);
    }

    private static ThoroughDetection Detect(byte[] image, string name)
    {
        using var source = new MemoryImageSource(name, image);
        return ImageFormatDetector.DetectThoroughAsync(source).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>A LUKS1 header per cryptsetup's spec: aes xts-plain64 sha256, payload 4096 sectors, slot 0 active.</summary>
    internal static byte[] BuildLuks1()
    {
        byte[] image = new byte[4096 * 512 + 4096];
        byte[] magic = [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xBA, 0xBE, 0, 1];
        magic.CopyTo(image, 0);
        Encoding.ASCII.GetBytes("aes").CopyTo(image, 8);
        Encoding.ASCII.GetBytes("xts-plain64").CopyTo(image, 40);
        Encoding.ASCII.GetBytes("sha256").CopyTo(image, 72);
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(104), 4096);
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(108), 64);
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(164), 1000);
        Encoding.ASCII.GetBytes("23f1520f-16c0-4d07-bb63-eb9a1116bf8a").CopyTo(image, 168);
        for (int i = 0; i < 8; i++)
        {
            Span<byte> slot = image.AsSpan(208 + (i * 48), 48);
            BinaryPrimitives.WriteUInt32BigEndian(slot, i == 0 ? 0x00AC71F3u : 0x0000DEADu);
            BinaryPrimitives.WriteUInt32BigEndian(slot[4..], i == 0 ? 1000u : 0u);
            BinaryPrimitives.WriteUInt32BigEndian(slot[40..], (uint)(8 + (i * 504)));
            BinaryPrimitives.WriteUInt32BigEndian(slot[44..], 4000);
        }

        return image;
    }

    /// <summary>A LUKS2 binary header as cryptsetup 2.6 writes it: hdr_size 0x4000, JSON at 4096, "SKUL" at 0x4000.</summary>
    internal static byte[] BuildLuks2()
    {
        byte[] image = new byte[0x8000 + 4096];
        byte[] magic = [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xBA, 0xBE, 0, 2];
        magic.CopyTo(image, 0);
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(8), 0x4000);
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(16), 3);
        Encoding.ASCII.GetBytes("sha256").CopyTo(image, 72);
        Encoding.ASCII.GetBytes("{\"keyslots\":{}}").CopyTo(image, 4096);
        magic.CopyTo(image, 0x4000);
        image[0x4000] = (byte)'S';
        image[0x4001] = (byte)'K';
        image[0x4002] = (byte)'U';
        image[0x4003] = (byte)'L';
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(0x4008), 0x4000);
        return image;
    }
}
