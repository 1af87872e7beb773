using System;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Formats;
using BackingChain.Tests.Infrastructure;
using BackingChain.Walk;

namespace BackingChain.Tests.Formats;

/// <summary>
/// A name another file is opened by must decode to exactly the bytes qemu passes to open(2): invalid UTF-8 (or
/// UTF-16) and a NUL smuggled into a parent locator are typed header errors, never a substituted U+FFFD name or
/// an exception out of the chain walk.
/// </summary>
public sealed class StoredNameDecodingTests
{
    // "back" + 0xFF + "ing.img": the same length as "backing.img" minus nothing qemu would change.
    private static readonly byte[] InvalidUtf8Name = [.. "back"u8, 0xFF, .. "ing.img"u8];

    [QemuImgTheory]
    [InlineData("qcow2", ImageFormat.Qcow2)]
    [InlineData("qcow", ImageFormat.Qcow)]
    [InlineData("qed", ImageFormat.Qed)]
    public async Task Backing_name_that_is_not_utf8_is_a_header_error(string qemuFormat, ImageFormat format)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", qemuFormat, "-u", "-b", "backXing.img", "-F", "raw", "t.img", "1M");
        ReplaceOnce(dir["t.img"], "backXing.img"u8.ToArray(), InvalidUtf8Name);

        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(format, dir["t.img"]);
        Assert.Equal(HeaderError.InvalidText, facts.Error);
        Assert.Equal("the backing file name is not valid UTF-8", facts.ErrorMessage);

        // Through the resolver: a malformed-header finding, not a layer naming "back\uFFFDing.img".
        ImageChain chain = new ImageChainResolver().Resolve(dir["t.img"]);
        Assert.Equal(ChainEnding.Malformed, chain.Ending);
        Assert.Contains(chain.Findings, f => f.Code == FindingCodes.MalformedHeader && f.Message.Contains("not valid UTF-8", StringComparison.Ordinal));
    }

    [QemuImgFact]
    public async Task Qcow2_data_file_name_that_is_not_utf8_is_a_header_error()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=dataXfile.raw", "t.qcow2", "1M");
        ReplaceOnce(dir["t.qcow2"], "dataXfile.raw"u8.ToArray(), [.. "data"u8, 0xC3, .. "file.raw"u8]);
        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Qcow2, dir["t.qcow2"]);
        Assert.Equal(HeaderError.InvalidText, facts.Error);
        Assert.Equal("the data file name is not valid UTF-8", facts.ErrorMessage);
    }

    [Fact]
    public async Task Vmdk_extent_and_parent_names_that_are_not_utf8_are_header_errors()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["flat.img"], new byte[4096]);
        byte[] extent = [.. "version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"fl"u8, 0xE2, 0x82, .. "at.img\" 0\n"u8];
        File.WriteAllBytes(dir["e.vmdk"], extent);
        (LayerFacts facts, int opens) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vmdk, dir["e.vmdk"]);
        Assert.Equal(HeaderError.InvalidText, facts.Error);
        Assert.Equal("the extent file name is not valid UTF-8", facts.ErrorMessage);
        Assert.Equal(0, opens);

        byte[] parent = [.. "version=1\nCID=1\nparentCID=2\nparentFileNameHint=\"pa"u8, 0x80, .. "rent.vmdk\"\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"flat.img\" 0\n"u8];
        File.WriteAllBytes(dir["p.vmdk"], parent);
        (facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vmdk, dir["p.vmdk"]);
        Assert.Equal(HeaderError.InvalidText, facts.Error);
        Assert.Equal("the parentFileNameHint is not valid UTF-8", facts.ErrorMessage);
    }

    [QemuImgTheory]
    [InlineData("MacX", "file:///images/par%00ent.vhd")]
    [InlineData("W2ru", "par\0ent.vhd")]
    [InlineData("Wi2r", "par\0ent.vhd")]
    public async Task Vhd_locator_with_a_smuggled_nul_is_a_typed_error_end_to_end(string code, string path)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "d.vhd", "4M");
        byte[] data = code == "W2ru" ? Encoding.Unicode.GetBytes(path) : Encoding.UTF8.GetBytes(path);
        File.WriteAllBytes(dir["t.vhd"], ImageBytes.VhdDifferencing(File.ReadAllBytes(dir["d.vhd"]), Guid.NewGuid(), "parent.vhd", (code, data)));

        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vpc, dir["t.vhd"]);
        Assert.Equal(HeaderError.InvalidText, facts.Error);
        Assert.Equal("the parent locator path contains a NUL character", facts.ErrorMessage);

        ImageChain chain = new ImageChainResolver().Resolve(dir["t.vhd"]);
        Assert.Equal(ChainEnding.Malformed, chain.Ending);
    }

    [QemuImgFact]
    public async Task Vhd_parent_name_with_text_after_a_nul_is_a_typed_error()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "d.vhd", "4M");
        File.WriteAllBytes(dir["t.vhd"], ImageBytes.VhdDifferencing(File.ReadAllBytes(dir["d.vhd"]), Guid.NewGuid(), "parent.vhd\0/etc/passwd"));
        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vpc, dir["t.vhd"]);
        Assert.Equal(HeaderError.InvalidText, facts.Error);
        Assert.Equal("the parent name contains a NUL character", facts.ErrorMessage);
    }

    [QemuImgTheory]
    [InlineData("par\0ent.vhdx", "contains a NUL character")]
    [InlineData("parent.vhdx\0", "contains a NUL character")]
    public async Task Vhdx_locator_with_a_nul_or_bad_utf16_is_a_typed_error_end_to_end(string value, string problem)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "vhdx", "d.vhdx", "4M");
        File.WriteAllBytes(dir["t.vhdx"], ImageBytes.VhdxDifferencing(File.ReadAllBytes(dir["d.vhdx"]), ("relative_path", value)));

        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Vhdx, dir["t.vhdx"]);
        Assert.Equal(HeaderError.InvalidText, facts.Error);
        Assert.Equal($"the VHDX parent locator's relative_path {problem}", facts.ErrorMessage);

        ImageChain chain = new ImageChainResolver().Resolve(dir["t.vhdx"]);
        Assert.Equal(ChainEnding.Malformed, chain.Ending);
    }

    private static void ReplaceOnce(string path, byte[] find, byte[] replacement)
    {
        Assert.Equal(find.Length, replacement.Length);
        byte[] bytes = File.ReadAllBytes(path);
        int at = bytes.AsSpan().IndexOf(find);
        Assert.True(at >= 0, "the name qemu-img wrote was not found");
        replacement.CopyTo(bytes, at);
        File.WriteAllBytes(path, bytes);
    }
}
