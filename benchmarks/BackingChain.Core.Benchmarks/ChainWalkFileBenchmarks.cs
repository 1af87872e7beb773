using System;
using System.IO;
using BackingChain.Chain;
using BackingChain.Trust;
using BenchmarkDotNet.Attributes;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Benchmarks;

/// <summary>
/// The chain walk from files, warm page cache, against the floor it cannot beat: for every layer only
/// <c>open + pread(4096) + close</c> (the baseline). Target (docs/design.md): Ratio ≤ 1.5. The resolver runs as
/// <c>backing-chain info --backing-chain</c> runs it (qemu-compatible policy, top format probed).
/// </summary>
public class ChainWalkFileBenchmarks
{
    private readonly byte[] _buffer = new byte[4096];
    private ChainFiles _files = null!;
    private ImageChainResolver _resolver = null!;

    [Params(1, 10, 200)]
    public int Depth { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _files = ChainFiles.Create(Depth);
        _resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible });
        ImageChain chain = Resolve();
        if (chain.Ending != ChainEnding.Complete || chain.Layers.Length != Depth)
        {
            throw new InvalidOperationException($"Expected a complete chain of {Depth}, got {chain.Ending} with {chain.Layers.Length} layers: {chain.ErrorMessage}");
        }

        // Warm the page cache and the dentry cache.
        OpenReadClose();
    }

    /// <summary>The floor: what any reader must do per layer, and nothing else.</summary>
    [Benchmark(Baseline = true)]
    public int OpenReadClose()
    {
        int total = 0;
        foreach (string layer in _files.Layers)
        {
            using SafeFileHandle handle = File.OpenHandle(layer, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            total += RandomAccess.Read(handle, _buffer, 0);
        }

        return total;
    }

    [Benchmark]
    public ImageChain Resolve() => _resolver.Resolve(_files.Top);
}
