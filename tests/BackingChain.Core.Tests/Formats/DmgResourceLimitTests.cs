using System;
using System.Buffers.Binary;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using BackingChain.Formats;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Formats;

/// <summary>
/// A DMG resource fork (or property list) of thousands of tiny resources: each costs the reader a read, so their
/// number is capped instead of growing with the file.
/// </summary>
public sealed class DmgResourceLimitTests
{
    [Fact]
    public async Task Resource_fork_of_many_tiny_resources_is_refused()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["r.dmg"], ResourceFork(resources: 5000));
        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Dmg, dir["r.dmg"]);
        Assert.Equal(HeaderError.InvalidExtension, facts.Error);
        Assert.Contains("more than 4096 resources", facts.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resource_fork_under_the_cap_still_reads()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["r.dmg"], ResourceFork(resources: 100));
        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Dmg, dir["r.dmg"]);
        Assert.Equal(HeaderError.None, facts.Error);
        Assert.Equal(2048L * 512, facts.VirtualSize);
    }

    [Fact]
    public async Task Property_list_of_many_data_elements_is_refused()
    {
        using var dir = new ScratchDirectory();
        byte[] image = ImageBytes.DmgWithPlist(2048);
        int xmlLength = image.Length - 512;
        var xml = new StringBuilder("<plist>");
        for (int i = 0; i < 5000; i++)
        {
            xml.Append("<data>AA==</data>");
        }

        xml.Append(Encoding.ASCII.GetString(image, 0, xmlLength)).Append("</plist>");
        byte[] text = Encoding.ASCII.GetBytes(xml.ToString());
        byte[] patched = new byte[text.Length + 512];
        text.CopyTo(patched, 0);
        image.AsSpan(xmlLength).CopyTo(patched.AsSpan(text.Length));
        BinaryPrimitives.WriteUInt64BigEndian(patched.AsSpan(text.Length + 0xE0), (ulong)text.Length);
        File.WriteAllBytes(dir["p.dmg"], patched);

        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Dmg, dir["p.dmg"]);
        Assert.Equal(HeaderError.InvalidExtension, facts.Error);
        Assert.Contains("more than 4096 resources", facts.ErrorMessage, StringComparison.Ordinal);
    }

    /// <summary>The generator's one-resource fork, preceded by <paramref name="resources"/> − 1 one-byte resources.</summary>
    private static byte[] ResourceFork(int resources)
    {
        byte[] original = ImageBytes.DmgWithResourceFork(2048);
        int forkLength = original.Length - 512;
        int mishResource = forkLength - 256;
        int tiny = (resources - 1) * 5;
        byte[] image = new byte[forkLength + tiny + 512];
        original.AsSpan(0, 256).CopyTo(image);
        for (int i = 0; i < resources - 1; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(256 + (i * 5)), 1);
        }

        original.AsSpan(256, mishResource).CopyTo(image.AsSpan(256 + tiny));
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(8), (uint)(tiny + mishResource));
        original.AsSpan(forkLength).CopyTo(image.AsSpan(forkLength + tiny));
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(forkLength + tiny + 0x30), (ulong)(forkLength + tiny));
        return image;
    }
}
