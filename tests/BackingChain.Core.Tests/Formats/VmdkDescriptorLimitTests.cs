using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using BackingChain.Formats;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Formats;

/// <summary>
/// Hostile VMDK descriptors: one file under thousands of spellings, extent offsets that overflow, NUL bytes.
/// Each is a typed header error (or a bounded result), never a crash or a cost quadratic in the line count.
/// </summary>
public sealed class VmdkDescriptorLimitTests
{
    private const string Header = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n";

    [Fact]
    public async Task One_file_under_21000_spellings_is_refused_before_anything_is_opened()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["flat.img"], new byte[1 << 20]);
        var text = new StringBuilder(Header);
        foreach (string spelling in Spellings("flat.img", 21000))
        {
            text.Append("RW 2048 FLAT \"").Append(spelling).Append("\" 0\n");
        }

        Assert.True(text.Length < (1 << 20) - 1, "the descriptor must fit in what qemu reads");
        File.WriteAllText(dir["d.vmdk"], text.ToString());

        (LayerFacts facts, int opens) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vmdk, dir["d.vmdk"]);
        Assert.Equal(HeaderError.InvalidSize, facts.Error);
        Assert.Contains("more than 4096 extents", facts.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(0, opens);
    }

    [Fact]
    public async Task One_file_under_many_spellings_below_the_cap_is_opened_once()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["flat.img"], new byte[1 << 20]);
        var text = new StringBuilder(Header);
        foreach (string spelling in Spellings("flat.img", 3000))
        {
            text.Append("RW 1 FLAT \"").Append(spelling).Append("\" 0\n");
        }

        File.WriteAllText(dir["d.vmdk"], text.ToString());
        (LayerFacts facts, int opens) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vmdk, dir["d.vmdk"]);
        Assert.Equal(HeaderError.None, facts.Error);
        Assert.Equal(3000L * 512, facts.VirtualSize);
        Assert.Equal(1, opens);
    }

    [Theory]
    [InlineData("RW 2048 FLAT \"flat.img\" 9223372036854775807")]   // offset × 512 overflows
    [InlineData("RW 2048 FLAT \"flat.img\" 18014398509481983")]     // offset × 512 fits, offset + size does not
    [InlineData("RW 2048 FLAT \"flat.img\" 99999999999999999999999")] // strtol saturates at LONG_MAX
    public async Task Extent_offset_that_overflows_is_a_typed_error(string line)
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["flat.img"], new byte[1 << 20]);
        File.WriteAllText(dir["d.vmdk"], Header + line + "\n");
        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vmdk, dir["d.vmdk"]);
        Assert.Equal(HeaderError.InvalidOffset, facts.Error);
    }

    [Fact]
    public async Task Descriptor_file_with_a_nul_byte_is_a_typed_error()
    {
        // qemu stops at the NUL and never sees the second extent; the text means something else past it.
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["flat.img"], new byte[1 << 20]);
        File.WriteAllText(dir["d.vmdk"], Header + "RW 2048 FLAT \"flat.img\" 0\n\0RW 2048 FLAT \"/etc/passwd\" 0\n");
        (LayerFacts facts, int opens) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vmdk, dir["d.vmdk"]);
        Assert.Equal(HeaderError.InvalidText, facts.Error);
        Assert.Equal(0, opens);
    }

    [QemuImgFact]
    public async Task Descriptor_files_qemu_img_writes_still_read()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentFlat", "t.vmdk", "5G");
        (LayerFacts facts, int opens) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vmdk, dir["t.vmdk"]);
        Assert.Equal(HeaderError.None, facts.Error);
        Assert.Equal(5L << 30, facts.VirtualSize);
        Assert.Equal(3, opens);
    }

    [Theory]
    [InlineData("a", "a")]
    [InlineData("./a", "a")]
    [InlineData(".//./a", "a")]
    [InlineData("d//e/./a", "d/e/a")]
    [InlineData("/x/./y", "/x/y")]
    [InlineData("//x", "/x")]
    [InlineData("./", "./")]
    [InlineData("../a", "../a")]
    public void Lexical_key_drops_only_what_names_the_same_file(string name, string key) =>
        Assert.Equal(key, BackingChain.Formats.Vmdk.VmdkFormatReader.LexicalKey(name));

    /// <summary>Distinct spellings of one relative name: "./" followed by any mix of "./" and "/" segments.</summary>
    private static List<string> Spellings(string name, int count)
    {
        var result = new List<string>(count);
        var queue = new Queue<string>([""]);
        while (result.Count < count)
        {
            string prefix = queue.Dequeue();
            result.Add("./" + prefix + name);
            queue.Enqueue(prefix + "./");
            queue.Enqueue(prefix + "/");
        }

        return result;
    }
}
