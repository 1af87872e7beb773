using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using BackingChain.Chain;
using BackingChain.Internal;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release -- --walk-interleaved [DEPTH] [ROUNDS]</c>: the walk, its two C floors and the library's
/// own system-call layer (the same calls made through its P/Invoke imports, no walk) timed in turn, round after round,
/// in one process. BenchmarkDotNet measures one method after another, so on a shared machine a
/// neighbour's build can land on one of them only; interleaved, all three see the same load. Prints the best and
/// the median time per layer of each, and the ratios to the C floor.
/// </summary>
public static class WalkInterleaved
{
    public static void Run(int depth, int rounds)
    {
        ChainFiles files = ChainFiles.Create(depth);
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible });
        using CFloor floor = CFloor.Load(files.Layers);
        ImageChain chain = resolver.Resolve(files.Top);
        if (chain.Ending != ChainEnding.Complete || chain.Layers.Length != depth)
        {
            throw new InvalidOperationException($"Expected a complete chain of {depth}, got {chain.Ending} with {chain.Layers.Length} layers.");
        }

        byte[] head = new byte[4096];
        var closes = new DeferredCloses();
        void LibraryCalls()
        {
            foreach (string layer in files.Layers)
            {
                if (UnixFile.TryOpenDescriptor(layer, out int fd, out _, out _) != UnixOpenResult.Opened || UnixFile.Read(fd, head, 0) < 0)
                {
                    throw new InvalidOperationException($"could not read {layer}");
                }

                closes.Add(fd);
            }

            closes.CloseAll();
        }

        // Warm: JIT tiers, pools, page and dentry caches.
        for (int i = 0; i < 300; i++)
        {
            resolver.Resolve(files.Top);
            floor.Floor();
            floor.AsLibrary();
            LibraryCalls();
        }

        var c = new List<double>(rounds);
        var library = new List<double>(rounds);
        var walk = new List<double>(rounds);
        var calls = new List<double>(rounds);
        for (int i = 0; i < rounds; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            floor.Floor();
            long t1 = Stopwatch.GetTimestamp();
            resolver.Resolve(files.Top);
            long t2 = Stopwatch.GetTimestamp();
            floor.AsLibrary();
            long t3 = Stopwatch.GetTimestamp();
            LibraryCalls();
            long t4 = Stopwatch.GetTimestamp();
            calls.Add(PerLayer(t4 - t3, depth));
            c.Add(PerLayer(t1 - t0, depth));
            walk.Add(PerLayer(t2 - t1, depth));
            library.Add(PerLayer(t3 - t2, depth));
        }

        c.Sort();
        library.Sort();
        walk.Sort();
        calls.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"depth {depth}, {rounds} rounds, µs per layer (best / median):"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  C open+pread+close        {c[0],6:F2} / {c[rounds / 2],6:F2}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  C open+statx+pread+batch  {library[0],6:F2} / {library[rounds / 2],6:F2}   ratio {library[0] / c[0]:F2} / {library[rounds / 2] / c[rounds / 2]:F2}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  the same, via the library {calls[0],6:F2} / {calls[rounds / 2],6:F2}   ratio {calls[0] / c[0]:F2} / {calls[rounds / 2] / c[rounds / 2]:F2}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  Resolve                   {walk[0],6:F2} / {walk[rounds / 2],6:F2}   ratio {walk[0] / c[0]:F2} / {walk[rounds / 2] / c[rounds / 2]:F2}"));
    }

    private static double PerLayer(long ticks, int depth) => ticks * 1e6 / Stopwatch.Frequency / depth;
}
