using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Sources;
using BackingChain.Trust;
using BackingChain.Walk;
using BenchmarkDotNet.Attributes;

namespace BackingChain.Benchmarks;

/// <summary>
/// The chain walk with no I/O: the same qemu-img-made qcow2 chain as <see cref="ChainWalkFileBenchmarks"/>, held in
/// memory and served by <see cref="MemoryImageSourceProvider"/>. What is left is probing, parsing, path handling,
/// the trust gate and building the model; the allocation column is what the model keeps per layer.
/// </summary>
public class ChainResolveBenchmarks
{
    private ImageChainResolver _resolver = null!;
    private MemoryImageSource _top = null!;

    [Params(1, 10, 200)]
    public int Depth { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        ChainFiles files = ChainFiles.Create(Depth);
        var images = new Dictionary<string, ReadOnlyMemory<byte>>(StringComparer.Ordinal);
        foreach (string layer in files.Layers)
        {
            images[layer] = File.ReadAllBytes(layer);
        }

        _top = new MemoryImageSource(files.Top, images[files.Top]);
        _resolver = new ImageChainResolver(new ImageChainResolverOptions
        {
            Policy = TrustPolicy.QemuCompatible,
            SourceProviders = [new MemoryImageSourceProvider(images)],
        });

        ImageChain chain = Resolve();
        if (chain.Ending != ChainEnding.Complete || chain.Layers.Length != Depth)
        {
            throw new InvalidOperationException($"Expected a complete chain of {Depth}, got {chain.Ending} with {chain.Layers.Length} layers: {chain.ErrorMessage}");
        }
    }

    [Benchmark]
    public ImageChain Resolve()
    {
        ValueTask<ImageChain> walk = _resolver.ResolveAsync(_top);
        return walk.IsCompletedSuccessfully ? walk.Result : walk.AsTask().GetAwaiter().GetResult();
    }
}
