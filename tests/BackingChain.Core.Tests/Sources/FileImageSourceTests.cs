using System;
using System.IO;
using System.Threading.Tasks;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Sources;

public sealed class FileImageSourceTests
{
    [Fact]
    public void Two_names_of_one_file_share_an_identity()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["a.img"], new byte[1000]);
        File.WriteAllBytes(dir["b.img"], new byte[1000]);
        File.CreateSymbolicLink(dir["link.img"], "a.img");

        using FileImageSource a = FileImageSource.Open(dir["a.img"]);
        using FileImageSource link = FileImageSource.Open(dir["link.img"]);
        using FileImageSource b = FileImageSource.Open(dir["b.img"]);
        using FileImageSource dotted = FileImageSource.Open(Path.Combine(dir.Path, ".", "a.img"));

        Assert.Equal(a.Identity, link.Identity);
        Assert.Equal(a.Identity, dotted.Identity);
        Assert.NotEqual(a.Identity, b.Identity);
        Assert.Equal(dir["link.img"], link.Name); // the name is kept as given, like qemu's filename
    }

    [Fact]
    public async Task Reads_are_positional_and_short_only_at_the_end()
    {
        using var dir = new ScratchDirectory();
        byte[] content = new byte[10000];
        new Random(3).NextBytes(content);
        File.WriteAllBytes(dir["data.img"], content);
        using FileImageSource source = FileImageSource.Open(dir["data.img"]);

        byte[] buffer = new byte[4096];
        int tail = await source.ReadAtAsync(8000, buffer);
        int middle = await source.ReadAtAsync(100, buffer.AsMemory(0, 50));
        int past = await source.ReadAtAsync(20000, buffer);

        Assert.Equal(10000, source.Length);
        Assert.Equal(2000, tail);
        Assert.Equal(50, middle);
        Assert.Equal(content.AsSpan(100, 50).ToArray(), buffer.AsSpan(0, 50).ToArray());
        Assert.Equal(0, past);
        Assert.True(source.AllocatedSize >= 8192);
    }

    [Fact]
    public void Refuses_a_fifo_without_blocking()
    {
        using var dir = new ScratchDirectory();
        string fifo = dir["pipe"];
        Assert.Equal(0, ProcessRunner.Run("mkfifo", [fifo]).ExitCode);

        Assert.Throws<IOException>(() => FileImageSource.Open(fifo));
        Assert.Throws<IOException>(() => FileImageSource.Open("/dev/zero"));
        Assert.Throws<FileNotFoundException>(() => FileImageSource.Open(dir["absent.img"]));
    }
}
