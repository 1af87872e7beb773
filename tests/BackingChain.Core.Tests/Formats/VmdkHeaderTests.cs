using System;
using System.Buffers.Binary;
using System.IO;
using System.Linq;
using System.Text;
using BackingChain.Chain;
using BackingChain.Detection;
using BackingChain.Formats.Vmdk;
using BackingChain.Tests.Infrastructure;
using BackingChain.Walk;

namespace BackingChain.Tests.Formats;

public sealed class VmdkHeaderTests
{
    private const string FlatDescriptor =
        "# Disk DescriptorFile\nversion=1\nCID=7569ea6c\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n" +
        "# Extent description\nRW 2048 FLAT \"v-monolithicFlat-flat.vmdk\" 0\n\n# The Disk Data Base\n#DDB\n\n" +
        "ddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n";

    /// <summary>The first sector qemu-img 7.2 writes for a 1 MiB monolithicSparse image.</summary>
    internal static byte[] MonolithicSparseSector()
    {
        byte[] sector = new byte[512];
        Convert.FromHexString(
            "4b444d56010000000300000000080000" +
            "00000000800000000000000001000000" +
            "00000000140000000000000000020000" +
            "15000000000000001a00000000000000" +
            "80000000000000000000000a200d0a0000000000").CopyTo(sector, 0);
        return sector;
    }

    [Fact]
    public void Parse_qemu_sparse_header_reads_the_fields_qemu_wrote()
    {
        VmdkSparseHeader header = VmdkSparseHeader.Parse(MonolithicSparseSector());
        Assert.Equal(1u, header.Version);
        Assert.Equal(3u, header.Flags);
        Assert.Equal(2048UL, header.Capacity);
        Assert.Equal(65536, header.GrainSize);
        Assert.Equal(1UL, header.DescriptorOffset);
        Assert.Equal(20UL, header.DescriptorSize);
        Assert.Equal(512u, header.NumGtesPerGt);
        Assert.Equal(0x15UL, header.RgdOffset);
        Assert.Equal(0x1aUL, header.GdOffset);
        Assert.Equal(0x80UL, header.GrainOffset);
        Assert.False(header.IsCompressed);
        Assert.False(header.IsDescriptorContainer);
    }

    [Theory]
    [InlineData("version 4", 4, 4UL, HeaderError.UnsupportedVersion)]
    [InlineData("513 gtes", 44, 513UL, HeaderError.InvalidSize)]
    [InlineData("granularity 0", 20, 0UL, HeaderError.InvalidSize)]
    [InlineData("granularity 1 GiB + 1 sector", 20, 0x200001UL, HeaderError.InvalidSize)]
    [InlineData("capacity 2^62", 12, 1UL << 62, HeaderError.InvalidSize)]
    [InlineData("gd at 2^54 sectors (2^63 bytes)", 56, 1UL << 54, HeaderError.InvalidOffset)]
    public void TryParse_out_of_range_field_fails(string label, int offset, ulong value, HeaderError expected)
    {
        _ = label;
        byte[] sector = MonolithicSparseSector();
        if (offset is 4 or 44)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(sector.AsSpan(offset), (uint)value);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(sector.AsSpan(offset), value);
        }

        Assert.False(VmdkSparseHeader.TryParse(sector, out _, out HeaderError error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Footer_with_bad_markers_is_an_invalid_footer()
    {
        byte[] footer = new byte[1536];
        MonolithicSparseSector().CopyTo(footer, 512);
        Assert.False(VmdkSparseHeader.TryParseFooter(footer, out _, out HeaderError error));
        Assert.Equal(HeaderError.Inconsistent, error);

        BinaryPrimitives.WriteUInt32LittleEndian(footer.AsSpan(12), 3); // footer marker type
        Assert.True(VmdkSparseHeader.TryParseFooter(footer, out VmdkSparseHeader header, out _));
        Assert.Equal(2048UL, header.Capacity);
    }

    [Fact]
    public void Descriptor_parse_reads_ids_create_type_and_extents()
    {
        byte[] text = Encoding.ASCII.GetBytes(FlatDescriptor);
        VmdkDescriptor descriptor = VmdkDescriptor.Parse(text);
        Assert.Equal(0x7569ea6cu, descriptor.Cid);
        Assert.Equal(0xffffffffu, descriptor.ParentCid);
        Assert.Equal("monolithicFlat", descriptor.GetCreateType(text));
        Assert.False(descriptor.HasParent);
        Assert.Equal(1, descriptor.ExtentCount);
        VmdkExtentEnumerator extents = VmdkDescriptor.EnumerateExtents(text);
        Assert.True(extents.MoveNext());
        Assert.Equal(VmdkExtentType.Flat, extents.Current.Type);
        Assert.Equal(2048, extents.Current.Sectors);
        Assert.Equal("v-monolithicFlat-flat.vmdk", Encoding.ASCII.GetString(text[extents.Current.FileNameRange]));
        Assert.False(extents.MoveNext());
    }

    [Theory]
    [InlineData("no parentCID", "version=1\nCID=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"a\" 0\n", HeaderError.InvalidText)]
    [InlineData("no CID", "version=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"a\" 0\n", HeaderError.InvalidText)]
    [InlineData("monolithicSparse standalone", "CID=1\nparentCID=1\ncreateType=\"monolithicSparse\"\nRW 1 FLAT \"a\" 0\n", HeaderError.UnsupportedFeature)]
    [InlineData("createType running into the next quote", "CID=1\nparentCID=1\ncreateType=\"monolithicFlat\nRW 1 FLAT \"a\" 0\n", HeaderError.UnsupportedFeature)]
    [InlineData("createType without a closing quote", "CID=1\nparentCID=1\nRW 1 FLAT a 0\ncreateType=\"monolithicFlat\n", HeaderError.InvalidText)]
    [InlineData("unterminated hint", "CID=1\nparentCID=1\nparentFileNameHint=\"abc\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"a\" 0\n", HeaderError.None)]
    [InlineData("hint quote lost", "CID=1\nparentCID=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"a\" 0\nparentFileNameHint", HeaderError.InvalidText)]
    [InlineData("flat without offset", "CID=1\nparentCID=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"a\"\n", HeaderError.InvalidText)]
    [InlineData("negative flat offset", "CID=1\nparentCID=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"a\" -5\n", HeaderError.InvalidText)]
    [InlineData("sparse with offset", "CID=1\nparentCID=1\ncreateType=\"monolithicFlat\"\nRW 1 SPARSE \"a\" 5\n", HeaderError.InvalidText)]
    [InlineData("only RDONLY", "CID=1\nparentCID=1\ncreateType=\"monolithicFlat\"\nRDONLY 1 FLAT \"a\" 0\n", HeaderError.Inconsistent)]
    [InlineData("unterminated extent name", "CID=1\nparentCID=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"a 0\n", HeaderError.InvalidText)]
    public void Descriptor_rules_follow_qemu(string label, string text, HeaderError expected)
    {
        _ = label;
        bool ok = VmdkDescriptor.TryParse(Encoding.ASCII.GetBytes(text), out _, out HeaderError error);
        Assert.Equal(expected, error);
        Assert.Equal(expected == HeaderError.None, ok);
    }

    [Fact]
    public void Descriptor_with_nul_ends_at_the_nul()
    {
        byte[] text = Encoding.ASCII.GetBytes(FlatDescriptor.Replace("RW 2048", "\0RW 2048", StringComparison.Ordinal));
        Assert.False(VmdkDescriptor.TryParse(text, out _, out HeaderError error));
        Assert.Equal(HeaderError.Inconsistent, error);
    }

    [Fact]
    public void Huge_descriptor_is_bounded_to_one_mebibyte()
    {
        // 8 MiB of extent lines: only the first MiB - 1 is looked at, as qemu reads no more.
        var builder = new StringBuilder("CID=1\nparentCID=2\ncreateType=\"monolithicFlat\"\n");
        while (builder.Length < 8 << 20)
        {
            builder.Append("RW 1 FLAT \"a\" 0\n");
        }

        // The first MiB alone holds some 65,000 extent lines: past the extent cap (docs/limits.md), refused.
        byte[] text = Encoding.ASCII.GetBytes(builder.ToString());
        Assert.False(VmdkDescriptor.TryParse(text, out _, out HeaderError error));
        Assert.Equal(HeaderError.InvalidSize, error);

        // Cut to the cap, the same text parses: the limit is the count, not the length.
        string capped = builder.ToString(0, 46 + (4096 * 16));
        Assert.True(VmdkDescriptor.TryParse(Encoding.ASCII.GetBytes(capped), out VmdkDescriptor descriptor, out _));
        Assert.Equal(4096, descriptor.ExtentCount);
    }

    [Fact]
    public void Cid_found_inside_parentCID_when_it_comes_first_as_in_qemu()
    {
        byte[] text = Encoding.ASCII.GetBytes("parentCID=0000abcd\nCID=1234\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"a\" 0\n");
        VmdkDescriptor descriptor = VmdkDescriptor.Parse(text);
        Assert.Equal(0xabcdu, descriptor.Cid);
        Assert.Equal(0xabcdu, descriptor.ParentCid);
    }

    [Fact]
    public void Random_mutations_never_throw()
    {
        var random = new Random(99);
        byte[] text = Encoding.ASCII.GetBytes(FlatDescriptor);
        byte[] sector = MonolithicSparseSector();
        for (int i = 0; i < 20000; i++)
        {
            byte[] t = (byte[])text.Clone();
            t[random.Next(t.Length)] = (byte)"\"\n\r 0-x#=RWFLAT\0"[random.Next(16)];
            _ = VmdkDescriptor.TryParse(t.AsSpan(0, random.Next(t.Length + 1)), out _, out _);
            byte[] s = (byte[])sector.Clone();
            s[random.Next(4, 80)] = (byte)random.Next(256);
            _ = VmdkSparseHeader.TryParse(s, out _, out _);
            _ = VmdkSparseHeader.TryParseFooter(new byte[1536], out _, out _);
        }
    }

    [Fact]
    public void Parsers_allocate_nothing()
    {
        byte[] sector = MonolithicSparseSector();
        byte[] text = Encoding.ASCII.GetBytes(FlatDescriptor);
        Assert.True(VmdkSparseHeader.TryParse(sector, out _, out _));
        Assert.True(VmdkDescriptor.TryParse(text, out _, out _));
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool sparseOk = VmdkSparseHeader.TryParse(sector, out VmdkSparseHeader header, out _);
        bool descriptorOk = VmdkDescriptor.TryParse(text, out VmdkDescriptor descriptor, out _);
        int extents = 0;
        foreach (VmdkExtentLine line in VmdkDescriptor.EnumerateExtents(text))
        {
            extents += line.IsFlat ? 1 : 0;
        }

        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.True(sparseOk && descriptorOk);
        Assert.Equal(2048UL, header.Capacity);
        Assert.Equal(1, descriptor.ExtentCount);
        Assert.Equal(1, extents);
        Assert.Equal(0, after - before);
    }

    [Theory]
    [InlineData("KDMV", true)]
    [InlineData("COWD", true)]
    [InlineData("# c\nversion=1\n", true)]
    [InlineData("   \r\nversion=3\r\n", true)]
    [InlineData("# c\n\nversion=1\n", false)]
    [InlineData("version=4\n", false)]
    [InlineData("version=1", false)]
    public void Probe_follows_qemu(string head, bool vmdk)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(head);
        Assert.Equal(vmdk ? ImageFormat.Vmdk : ImageFormat.Raw, ImageFormatDetector.Detect(bytes, "x.img", 1 << 20));
    }

    [Fact]
    public void Probed_descriptor_naming_etc_passwd_is_refused_by_the_default_policy()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllText(dir["evil.img"], "version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"/etc/passwd\" 0\n");
        ImageChain chain = new ImageChainResolver().Resolve(dir["evil.img"]);
        Assert.NotEqual(ChainEnding.Complete, chain.Ending);
        Assert.Contains(chain.Findings, f => f.Code == FindingCodes.UnreachableImage && f.Message.Contains("/etc/passwd", StringComparison.Ordinal));
    }

    [Fact]
    public void Sparse_file_whose_embedded_descriptor_names_etc_passwd_ignores_it_like_qemu()
    {
        // qemu reads only CID, parentCID and parentFileNameHint from a sparse file's descriptor: its extent lines are not used.
        using var dir = new ScratchDirectory();
        byte[] file = new byte[65536];
        MonolithicSparseSector().CopyTo(file, 0);
        Encoding.ASCII.GetBytes("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"/etc/passwd\" 0\n").CopyTo(file, 512);
        File.WriteAllBytes(dir["sparse.vmdk"], file);
        ImageChain chain = new ImageChainResolver().Resolve(dir["sparse.vmdk"]);
        Assert.Equal(ChainEnding.Complete, chain.Ending);
        Assert.Empty(chain.Layers[0].References);
        Assert.Equal(1048576, chain.Layers[0].VirtualSize);
    }

    [Fact]
    public void Hostile_sparse_headers_give_a_finding_not_a_crash()
    {
        using var dir = new ScratchDirectory();
        foreach ((int offset, ulong value) in new (int, ulong)[] { (12, ulong.MaxValue), (20, ulong.MaxValue), (56, ulong.MaxValue), (64, ulong.MaxValue), (28, ulong.MaxValue), (12, 0) })
        {
            byte[] file = new byte[65536];
            MonolithicSparseSector().CopyTo(file, 0);
            BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(offset), value);
            File.WriteAllBytes(dir["bad.vmdk"], file);
            ImageChain chain = new ImageChainResolver().Resolve(dir["bad.vmdk"]);
            Assert.True(chain.Ending == ChainEnding.Malformed, $"offset {offset}: {chain.Ending}");
            Assert.NotEmpty(chain.Findings.Where(f => f.Code is FindingCodes.MalformedHeader or FindingCodes.UnsupportedFeature));
        }
    }
}
