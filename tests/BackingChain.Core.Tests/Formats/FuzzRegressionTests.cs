using System;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Formats.Vmdk;
using BackingChain.Fuzz;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Walk;

namespace BackingChain.Tests.Formats;

/// <summary>Inputs afl found (tests/BackingChain.Fuzz/FUZZING.md), kept as ordinary tests of the rule each one broke.</summary>
public sealed class FuzzRegressionTests
{
    /// <summary>
    /// vmdk target, 2026-12-01 (29 saved crashes, all this input's shape): a descriptor whose <c>parentFileNameHint</c>
    /// key sits in a comment and whose hint therefore runs, as qemu reads it, over the following lines up to the next
    /// quote — including a byte that is not UTF-8. The library refuses to decode that name (never lossily); the harness
    /// had failed to count that documented refusal as an allowed outcome for this one accessor.
    /// </summary>
    private static readonly byte[] HintRunningOverInvalidUtf8 = Convert.FromHexString(
        "232044706172656e7446696c654e616d6548696e743d69650a76657273696f6e3d3a0a0a706172656e744349443d666666486666a866"
        + "0a637265617465547970653d226d6f6e6f6c6974686963466c6174220a6e0a5257203230343820464c415420226469736b742e766d64"
        + "6b2220300a0a23");

    [Fact]
    public void A_parent_hint_that_is_not_utf8_is_a_typed_error_from_its_accessor()
    {
        Assert.True(VmdkDescriptor.TryParse(HintRunningOverInvalidUtf8, out VmdkDescriptor descriptor, out _));
        Assert.True(descriptor.HasParent);
        ImageFormatException ex = Assert.Throws<ImageFormatException>(() => descriptor.GetParentFileNameHint(HintRunningOverInvalidUtf8));
        Assert.Equal(HeaderError.InvalidText, ex.Error);

        // The harness's whole vmdk target accepts it now.
        FuzzTargets.All["vmdk"](HintRunningOverInvalidUtf8);
    }

    [Fact]
    public async Task The_same_descriptor_read_as_an_image_ends_the_walk_with_a_finding_not_a_reader_fault()
    {
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { MaxDepth = 1, SourceProviders = [] });
        using var source = new MemoryImageSource("crash.vmdk", HintRunningOverInvalidUtf8);
        ImageChain chain = await resolver.ResolveAsync(source, ImageFormat.Vmdk);

        // Its extent is not followed here (no source for files), which ends the walk before the hint is decoded; what
        // matters is that nothing escaped and the walk's last-resort catch did not fire.
        ReaderFault.AssertNone(chain);
        Assert.NotEqual(ChainEnding.Complete, chain.Ending);
        Assert.NotEmpty(chain.Findings);
    }
}
