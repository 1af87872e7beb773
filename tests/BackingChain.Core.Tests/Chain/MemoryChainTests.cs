using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;

namespace BackingChain.Tests.Chain;

/// <summary>The resolver over in-memory images (the embedding case): same walk, same rules, no files.</summary>
public sealed class MemoryChainTests
{
    [QemuImgFact]
    public async Task Resolves_a_chain_held_in_memory()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "2M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        var images = new Dictionary<string, ReadOnlyMemory<byte>>
        {
            ["vm/base.qcow2"] = File.ReadAllBytes(dir["base.qcow2"]),
        };
        var resolver = new ImageChainResolver(new ImageChainResolverOptions
        {
            SourceProviders = [new MemoryImageSourceProvider(images)],
        });
        using var top = new MemoryImageSource("vm/top.qcow2", File.ReadAllBytes(dir["top.qcow2"]));

        ImageChain chain = await resolver.ResolveAsync(top, ImageFormat.Qcow2);

        Assert.Equal(ChainEnding.Complete, chain.Ending);
        Assert.Equal(["vm/top.qcow2", "vm/base.qcow2"], [chain.Layers[0].Filename, chain.Layers[1].Filename]);
        Assert.Equal(2 * 1024 * 1024, chain.Layers[1].VirtualSize);
        Assert.Equal(FormatSource.Recorded, chain.Layers[1].FormatSource);
        Assert.True(TrustEvaluator.Evaluate(chain, TrustPolicy.Default).IsSafe);
    }

    [Fact]
    public async Task Garbage_and_empty_images_are_raw_and_never_throw()
    {
        var random = new Random(7);
        var resolver = new ImageChainResolver();
        for (int i = 0; i < 200; i++)
        {
            byte[] bytes = new byte[random.Next(0, 9000)];
            random.NextBytes(bytes);
            if (i % 2 == 0 && bytes.Length >= 8)
            {
                bytes[0] = 0x51; bytes[1] = 0x46; bytes[2] = 0x49; bytes[3] = 0xFB; // qcow2 magic
                bytes[4] = 0; bytes[5] = 0; bytes[6] = 0; bytes[7] = 3;
            }

            using var source = new MemoryImageSource($"random{i}", bytes);
            ImageChain chain = await resolver.ResolveAsync(source);
            Assert.True(chain.Ending is ChainEnding.Complete or ChainEnding.Malformed or ChainEnding.Refused or ChainEnding.Missing, chain.Ending.ToString());
        }
    }
}
