using System;
using System.Buffers.Binary;
using System.Text;
using BackingChain.Formats.Qcow;

namespace BackingChain.Tests.Formats;

public sealed class QcowHeaderTests
{
    /// <summary>What qemu-img 7.2 writes for <c>create -f qcow -b qcow1-base.qcow</c>.</summary>
    internal static byte[] Overlay()
    {
        byte[] data = Convert.FromHexString(
            "514649fb000000010000000000000030" +
            "0000000f000000000000000000100000" +
            "090c0000000000000000000000000040" +
            "71636f77312d626173652e71636f7700");
        return data;
    }

    [Fact]
    public void Parse_qemu_overlay_reads_the_fields_qemu_wrote()
    {
        byte[] data = Overlay();
        QcowHeader header = QcowHeader.Parse(data);
        Assert.Equal(1u, header.Version);
        Assert.Equal(1048576UL, header.VirtualSize);
        Assert.Equal(512, header.ClusterSize);
        Assert.Equal(12, header.L2Bits);
        Assert.Equal(0x40UL, header.L1TableOffset);
        Assert.Equal("qcow1-base.qcow", header.GetBackingFileName(data));
        Assert.False(header.IsEncrypted);
    }

    [Theory]
    [InlineData("version 2", 4, 2u, HeaderError.UnsupportedVersion)]
    [InlineData("size 1", 24, 1u, HeaderError.InvalidSize)]
    [InlineData("crypt 2", 36, 2u, HeaderError.UnsupportedFeature)]
    [InlineData("name 1024", 16, 1024u, HeaderError.InvalidSize)]
    public void TryParse_out_of_range_field_fails(string label, int offset, uint value, HeaderError expected)
    {
        _ = label;
        byte[] data = Overlay();
        if (offset == 24)
        {
            BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(offset), value);
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(offset), value);
        }

        Assert.False(QcowHeader.TryParse(data, out _, out HeaderError error));
        Assert.Equal(expected, error);
    }

    [Theory]
    [InlineData(8, 9)]
    [InlineData(17, 9)]
    [InlineData(9, 5)]
    [InlineData(9, 14)]
    public void TryParse_cluster_or_l2_bits_out_of_range_fails(byte clusterBits, byte l2Bits)
    {
        byte[] data = Overlay();
        data[32] = clusterBits;
        data[33] = l2Bits;
        Assert.False(QcowHeader.TryParse(data, out _, out HeaderError error));
        Assert.Equal(HeaderError.InvalidSize, error);
    }

    [Fact]
    public void TryParse_huge_size_is_refused_not_overflowed()
    {
        byte[] data = Overlay();
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(24), ulong.MaxValue);
        Assert.False(QcowHeader.TryParse(data, out _, out HeaderError error));
        Assert.Equal(HeaderError.InvalidSize, error);
    }

    [Fact]
    public void TryParse_name_past_the_buffer_reports_truncated()
    {
        byte[] data = Overlay();
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(8), 1UL << 40);
        Assert.False(QcowHeader.TryParse(data, out _, out HeaderError error));
        Assert.Equal(HeaderError.Truncated, error);
    }

    [Fact]
    public void Parse_throws_ImageFormatException_for_bad_magic()
    {
        byte[] data = Encoding.ASCII.GetBytes(new string('x', 64));
        ImageFormatException ex = Assert.Throws<ImageFormatException>(() => QcowHeader.Parse(data));
        Assert.Equal(HeaderError.BadMagic, ex.Error);
    }

    [Fact]
    public void TryParse_random_bytes_never_throws()
    {
        var random = new Random(1234);
        byte[] data = Overlay();
        for (int i = 0; i < 20000; i++)
        {
            byte[] mutated = (byte[])data.Clone();
            mutated[random.Next(4, mutated.Length)] = (byte)random.Next(256);
            mutated[random.Next(4, mutated.Length)] = (byte)random.Next(256);
            _ = QcowHeader.TryParse(mutated.AsSpan(0, random.Next(0, mutated.Length + 1)), out _, out _);
        }
    }

    [Fact]
    public void TryParse_allocates_nothing()
    {
        byte[] data = Overlay();
        Assert.True(QcowHeader.TryParse(data, out _, out _));
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool ok = QcowHeader.TryParse(data, out QcowHeader header, out _);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.True(ok);
        Assert.True(header.HasBackingFile);
        Assert.Equal(0, after - before);
    }
}
