using System.IO;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Trust;
using BenchmarkDotNet.Attributes;

namespace BackingChain.Benchmarks;

/// <summary>
/// What the CLI writes after the walk: qemu-img's <c>info --backing-chain --output=json</c> and the
/// <c>check --output json</c> trust report, for a resolved 10-deep qcow2 chain (and the evaluation the report needs).
/// </summary>
public class InteropBenchmarks
{
    private ImageChain _chain = null!;
    private TrustReport _report = null!;

    [Params(10)]
    public int Depth { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        ChainFiles files = ChainFiles.Create(Depth);
        _chain = new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible }).Resolve(files.Top);
        _report = TrustEvaluator.Evaluate(_chain, TrustPolicy.Default);
    }

    [Benchmark]
    public void QemuImgInfoJson_Write() => QemuImgInfoJson.Write(Stream.Null, _chain, backingChain: true);

    [Benchmark]
    public string QemuImgInfoJson_Format() => QemuImgInfoJson.Format(_chain);

    [Benchmark]
    public TrustReport TrustEvaluator_Evaluate() => TrustEvaluator.Evaluate(_chain, TrustPolicy.Default);

    [Benchmark]
    public void TrustReportJson_Write() => TrustReportJson.Write(Stream.Null, _report);
}
