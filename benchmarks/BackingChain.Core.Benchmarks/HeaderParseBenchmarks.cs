using BackingChain.Formats.Luks;
using BackingChain.Formats.Qcow2;
using BenchmarkDotNet.Attributes;

namespace BackingChain.Benchmarks;

/// <summary>
/// One header parse per format over a header qemu-img made (Fixtures/). Targets (DESIGN.md): qcow2 v3 with a
/// backing name and extensions ≤ 50 ns and 0 B; every other format ≤ 200 ns and 0 B.
/// Adding a format: its fixture in Fixtures/make-fixtures.sh, a field loaded in <see cref="Setup"/>, one method.
/// </summary>
public class HeaderParseBenchmarks
{
    private byte[] _qcow2V3 = [];
    private byte[] _luks1 = [];

    [GlobalSetup]
    public void Setup()
    {
        _qcow2V3 = Fixtures.Head("qcow2-v3-backing.qcow2.head");
        _luks1 = Fixtures.Head("luks1.luks.head");
    }

    /// <summary>qcow2 v3: backing file name, backing-format and feature-name-table extensions.</summary>
    [Benchmark]
    public ulong Qcow2V3_TryParse() =>
        Qcow2Header.TryParse(_qcow2V3, out Qcow2Header header, out _) ? header.BackingFileOffset : 0;

    /// <summary>LUKS1: the container qcow2's LUKS encryption and the luks driver share.</summary>
    [Benchmark]
    public uint Luks1_TryParse() =>
        Luks1Header.TryParse(_luks1, out Luks1Header header, out _) ? header.PayloadOffsetSectors : 0;
}
