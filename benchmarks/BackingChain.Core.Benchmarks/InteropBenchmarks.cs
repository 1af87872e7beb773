using System.IO;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Trust;
using BackingChain.Walk;
using BenchmarkDotNet.Attributes;

namespace BackingChain.Benchmarks;

/// <summary>
/// What the CLI writes after the walk: qemu-img's <c>info --backing-chain --output=json</c>, the
/// <c>check --output json</c> trust report (and the evaluation it needs), and libvirt's disk XML, for a resolved
/// 10-deep qcow2 chain.
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
        // Declared top format and recorded formats below: a chain the default policy accepts, so XML can be written.
        _chain = new ImageChainResolver().Resolve(files.Top, ImageFormat.Qcow2);
        _report = TrustEvaluator.Evaluate(_chain);
        Fixtures.Expect(_chain.Layers.Length == Depth && LibvirtDiskXml.CanWrite(_report, out _), "a complete, trusted chain");
    }

    [Benchmark]
    public void QemuImgInfoJson_Write() => QemuImgInfoJson.Write(Stream.Null, _chain, backingChain: true);

    [Benchmark]
    public string QemuImgInfoJson_Format() => QemuImgInfoJson.ToJson(_chain);

    [Benchmark]
    public TrustReport TrustEvaluator_Evaluate() => TrustEvaluator.Evaluate(_chain);

    [Benchmark]
    public void TrustReportJson_Write() => TrustReportJson.Write(Stream.Null, _report);

    /// <summary>libvirt's &lt;disk&gt; with the chain as nested &lt;backingStore&gt; elements (needs a complete, trusted chain).</summary>
    [Benchmark]
    public string LibvirtDiskXml_ToXml() => LibvirtDiskXml.ToXml(_report);
}
