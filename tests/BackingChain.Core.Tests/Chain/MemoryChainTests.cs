using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

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
        Assert.Equal(["vm/top.qcow2", "vm/base.qcow2"], [chain.Layers[0].FileName, chain.Layers[1].FileName]);
        Assert.Equal(2 * 1024 * 1024, chain.Layers[1].VirtualSize);
        Assert.Equal(FormatSource.Recorded, chain.Layers[1].FormatSource);
        Assert.True(TrustEvaluator.Evaluate(chain).IsSafe);
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
            ReaderFault.AssertNone(chain);
            Assert.True(chain.Ending is ChainEnding.Complete or ChainEnding.Malformed or ChainEnding.Refused or ChainEnding.Missing, chain.Ending.ToString());
        }
    }

    [QemuImgFact]
    public async Task A_source_that_reads_short_mid_file_ends_the_header_read_instead_of_spinning()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "base.qcow2", "1M");
        // The header region (extensions, feature table, the 1000-byte name) runs past the 512 bytes the source gives.
        string name = new string('b', 1000);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=8192", "-u", "-b", name, "-F", "qcow2", "-o", "size=1M", "top.qcow2");
        byte[] bytes = File.ReadAllBytes(dir["top.qcow2"]);
        using var source = new StingySource("top.qcow2", bytes, limit: 512);

        // On a pool thread, so that a reader spinning synchronously fails the test by time-out instead of hanging it.
        ImageChain chain = await Task.Run(() => new ImageChainResolver().ResolveAsync(source, ImageFormat.Qcow2).AsTask()).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(ChainEnding.Malformed, chain.Ending);
        Assert.Contains(chain.Findings, f => f.Code == FindingCodes.MalformedHeader);
    }

    /// <summary>Never returns more than <c>limit</c> bytes from the start, as a broken or hostile source might.</summary>
    private sealed class StingySource(string name, byte[] data, int limit) : IImageSource
    {
        public string Name => name;

        public long Length => data.Length;

        public long? AllocatedSize => data.Length;

        public ImageSourceIdentity Identity => ImageSourceIdentity.ForKey("memory", name);

        public ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, System.Threading.CancellationToken cancellationToken = default)
        {
            int count = (int)Math.Max(0, Math.Min(buffer.Length, limit - offset));
            data.AsSpan((int)offset, count).CopyTo(buffer.Span);
            return new ValueTask<int>(count);
        }

        public void Dispose()
        {
        }
    }
}
