using System;
using BackingChain.Formats.Luks;
using BackingChain.Formats.Parallels;
using BackingChain.Formats.Qcow;
using BackingChain.Formats.Qcow2;
using BackingChain.Formats.Qed;
using BackingChain.Formats.Vdi;
using BackingChain.Formats.Vhdx;
using BackingChain.Formats.Vmdk;
using BackingChain.Formats.Vpc;
using BenchmarkDotNet.Attributes;

namespace BackingChain.Benchmarks;

/// <summary>
/// One header parse per format over a header qemu-img made (Fixtures/). Targets (docs/design.md): qcow2 v3 with a
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
    private byte[] _parallels = [];
    private byte[] _vdi = [];
    private byte[] _vhd = [];
    private byte[] _vhdxHeader = [];

    [GlobalSetup]
    public void Setup()
    {
        _qcow2V3 = Fixtures.Head("qcow2-v3.head");
        _qcow1 = Fixtures.Head("qcow1.head");
        _qed = Fixtures.Head("qed.head");
        _vmdkSparse = Fixtures.Head("vmdk-sparse.head");
        _vmdkDescriptor = Fixtures.Head("vmdk-desc.head");
        _luks1 = Fixtures.Head("luks1.head");
        _parallels = Fixtures.Head("parallels.head");
        _vdi = Fixtures.Head("vdi.head");
        _vhd = Fixtures.Head("vhd-dynamic.head");
        _vhdxHeader = Fixtures.Head("vhdx-header1.bin");
        Fixtures.Expect(Qcow2V3_TryParse() != 0 && Qcow1_TryParse() != 0 && Qed_TryParse() != 0
            && VmdkSparse_TryParse() != 0 && VmdkDescriptor_TryParse() && Luks1_TryParse() != 0
            && Parallels_TryParse() && Vdi_TryParse() && VhdFooter_TryParse() && VhdDynamicHeader_TryParse()
            && Vhdx_TryParse(), "every fixture parses");
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

    /// <summary>Parallels header.</summary>
    [Benchmark]
    public bool Parallels_TryParse() => ParallelsHeader.TryParse(_parallels, out _, out _);

    /// <summary>VDI pre-header and header.</summary>
    [Benchmark]
    public bool Vdi_TryParse() => VdiHeader.TryParse(_vdi, out _, out _);

    /// <summary>VHD footer (the copy at offset 0 of a dynamic image), with its checksum.</summary>
    [Benchmark]
    public bool VhdFooter_TryParse() => VhdFooter.TryParse(_vhd.AsSpan(0, 512), out _, out _);

    /// <summary>VHD dynamic disk header (at 512), with its checksum.</summary>
    [Benchmark]
    public bool VhdDynamicHeader_TryParse() => VhdDynamicHeader.TryParse(_vhd.AsSpan(512, 1024), out _, out _);

    /// <summary>VHDX header block (4 KiB at 64 KiB), with its CRC-32C.</summary>
    [Benchmark]
    public bool Vhdx_TryParse() => VhdxHeader.TryParse(_vhdxHeader, out _, out _);
}
