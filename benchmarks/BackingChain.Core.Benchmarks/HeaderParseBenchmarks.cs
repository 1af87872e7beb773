using BackingChain.Formats.Luks;
using BackingChain.Formats.Qcow;
using BackingChain.Formats.Qcow2;
using BackingChain.Formats.Qed;
using BackingChain.Formats.Vmdk;
using BenchmarkDotNet.Attributes;

namespace BackingChain.Benchmarks;

/// <summary>
/// One header parse per format over a header qemu-img made (Fixtures/). Targets (DESIGN.md): qcow2 v3 with a
/// backing name and extensions ≤ 50 ns and 0 B; every other format ≤ 200 ns and 0 B.
/// Adding a format: its image in Fixtures/make-fixtures.sh, a field loaded in <see cref="Setup"/>, one method.
/// </summary>
public class HeaderParseBenchmarks
{
    /// <summary>QED checks its tables against the file length; the fixture is the head of a longer file.</summary>
    private const long QedFileLength = 1L << 30;

    private byte[] _qcow2V3 = [];
    private byte[] _qcow1 = [];
    private byte[] _qed = [];
    private byte[] _vmdkSparse = [];
    private byte[] _vmdkDescriptor = [];
    private byte[] _luks1 = [];

    [GlobalSetup]
    public void Setup()
    {
        _qcow2V3 = Fixtures.Head("qcow2-v3.head");
        _qcow1 = Fixtures.Head("qcow1.head");
        _qed = Fixtures.Head("qed.head");
        _vmdkSparse = Fixtures.Head("vmdk-sparse.head");
        _vmdkDescriptor = Fixtures.Head("vmdk-desc.head");
        _luks1 = Fixtures.Head("luks1.head");
        Fixtures.Expect(Qcow2V3_TryParse() != 0 && Qcow1_TryParse() != 0 && Qed_TryParse() != 0
            && VmdkSparse_TryParse() != 0 && VmdkDescriptor_TryParse() && Luks1_TryParse() != 0, "every fixture parses");
    }

    /// <summary>qcow2 v3: backing file name, backing-format and feature-name-table extensions.</summary>
    [Benchmark]
    public ulong Qcow2V3_TryParse() =>
        Qcow2Header.TryParse(_qcow2V3, out Qcow2Header header, out _) ? header.BackingFileOffset : 0;

    /// <summary>qcow version 1 with a backing name.</summary>
    [Benchmark]
    public ulong Qcow1_TryParse() =>
        QcowHeader.TryParse(_qcow1, out QcowHeader header, out _) ? header.Size : 0;

    /// <summary>QED with a backing name and the raw-backing feature.</summary>
    [Benchmark]
    public ulong Qed_TryParse() =>
        QedHeader.TryParse(_qed, QedFileLength, out QedHeader header, out _) ? header.ImageSize : 0;

    /// <summary>VMDK monolithicSparse: the KDMV sparse extent header.</summary>
    [Benchmark]
    public ulong VmdkSparse_TryParse() =>
        VmdkSparseHeader.TryParse(_vmdkSparse, out VmdkSparseHeader header, out _) ? header.Capacity : 0;

    /// <summary>VMDK text descriptor (monolithicFlat): parsed in place, extents and names left as ranges.</summary>
    [Benchmark]
    public bool VmdkDescriptor_TryParse() =>
        VmdkDescriptor.TryParse(_vmdkDescriptor, out _, out _);

    /// <summary>LUKS1: the container qcow2's LUKS encryption uses.</summary>
    [Benchmark]
    public uint Luks1_TryParse() =>
        Luks1Header.TryParse(_luks1, out Luks1Header header, out _) ? header.PayloadOffsetSectors : 0;
}
