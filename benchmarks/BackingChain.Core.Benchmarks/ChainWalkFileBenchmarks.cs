using System;
using System.IO;
using BackingChain.Chain;
using BackingChain.Trust;
using BackingChain.Walk;
using BenchmarkDotNet.Attributes;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Benchmarks;

/// <summary>
/// The chain walk from files, warm page cache, against the floor it cannot beat: for every layer only
/// <c>open + pread(4096) + close</c>, the C loop of <c>baseline/walk-floor.c</c> called in process (the baseline).
/// Target (docs/design.md): Ratio ≤ 1.5. Beside it, the same loop making the system calls the library makes, and
/// .NET's own <c>File.OpenHandle + RandomAccess.Read + close</c>. The resolver runs as
/// <c>backing-chain info --backing-chain</c> runs it (qemu-compatible policy, top format probed).
/// </summary>
public class ChainWalkFileBenchmarks
{
    private readonly byte[] _buffer = new byte[4096];
    private ChainFiles _files = null!;
    private ImageChainResolver _resolver = null!;
    private CFloor _c = null!;

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

        _c = CFloor.Load(_files.Layers);

        // Warm the page cache and the dentry cache.
        COpenReadClose();
    }

    [GlobalCleanup]
    public void Cleanup() => _c.Dispose();

    /// <summary>The floor: what any reader must do per layer, and nothing else, in C.</summary>
    [Benchmark(Baseline = true)]
    public long COpenReadClose() => _c.Floor();

    /// <summary>The C loop making the library's system calls: what its choices cost before any managed work.</summary>
    [Benchmark]
    public long COpenStatxReadBatchClose() => _c.AsLibrary();

    /// <summary>The floor as .NET code writes it.</summary>
    [Benchmark]
    public int DotNetOpenReadClose()
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
