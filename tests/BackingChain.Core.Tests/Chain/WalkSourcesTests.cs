using System.IO;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Walk;

namespace BackingChain.Tests.Chain;

/// <summary>The sources of one walk (<see cref="WalkSources"/>): a layer done with is the object the next one is opened into, and nothing else is.</summary>
public sealed class WalkSourcesTests
{
    [Fact]
    public void A_reopened_layer_the_walk_is_done_with_is_the_spare_the_next_backing_file_is_opened_into()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["a.img"], new byte[512]);
        File.WriteAllBytes(dir["b.img"], new byte[1024]);
        File.WriteAllBytes(dir["c.img"], new byte[2048]);
        using var sources = new WalkSources();

        FileImageSource first = sources.Reopen(dir["a.img"], fromDirectory: true);
        sources.CloseOpened();
        sources.Recycle(first);
        FileImageSource second = sources.Reopen(dir["b.img"], fromDirectory: true);

        Assert.Same(first, second);
        Assert.Equal(dir["b.img"], second.Name);
        Assert.Equal(1024, second.Length);

        // A source the walk did not reopen (the caller's top, a provider's) is never taken for a spare.
        using var other = new MemoryImageSource("top.img", new byte[16]);
        sources.CloseOpened();
        sources.Recycle(other);
        FileImageSource third = sources.Reopen(dir["c.img"], fromDirectory: true);
        Assert.NotSame(second, third);
        Assert.Equal(2048, third.Length);
    }
}
