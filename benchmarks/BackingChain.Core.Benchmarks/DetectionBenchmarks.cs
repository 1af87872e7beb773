using System.Collections.Generic;
using BackingChain.Detection;
using BenchmarkDotNet.Attributes;

namespace BackingChain.Benchmarks;

/// <summary>
/// qemu's probe (<see cref="ImageFormatDetector.Detect"/>) over the first bytes of every fixture: every registered
/// format scores the head, so this grows with the registry. A new fixture file is picked up without code.
/// </summary>
public class DetectionBenchmarks
{
    private byte[] _head = [];

    public static IEnumerable<string> AllFixtures() => Fixtures.All();

    [ParamsSource(nameof(AllFixtures))]
    public string Fixture { get; set; } = "";

    [GlobalSetup]
    public void Setup() => _head = Fixtures.Head(Fixture);

    [Benchmark]
    public ImageFormat Detect() => ImageFormatDetector.Detect(_head, Fixture, 1L << 20);
}
