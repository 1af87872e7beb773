using System;
using System.IO;
using System.Threading.Tasks;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Sources;

/// <summary>Every image source can be released with <c>await using</c>, as ASP.NET Core code releases resources.</summary>
public sealed class AsyncDisposalTests
{
    [Fact]
    public async Task Await_using_releases_a_file_source()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["image.raw"], new byte[4096]);
        IImageSource escaped;
        await using (IImageSource source = FileImageSource.Open(dir["image.raw"]))
        {
            Assert.Equal(512, await source.ReadAtAsync(0, new byte[512]));
            escaped = source;
        }

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await escaped.ReadAtAsync(0, new byte[512]));
    }
}
