using System;
using System.Buffers.Binary;
using BackingChain.Formats.Qed;

namespace BackingChain.Tests.Formats;

public sealed class QedHeaderTests
{
    /// <summary>The 327680-byte file qemu-img 7.2 writes for <c>create -f qed -b base.raw -F raw</c>.</summary>
    private const long FileLength = 327680;

    internal static byte[] OverRaw()
    {
        byte[] data = new byte[4096];
        Convert.FromHexString(
            "5145440000000100040000000100000005000000000000000000000000000000" +
            "0000000000000000000001000000000000001000000000004000000008000000" +
            "626173652e726177").CopyTo(data, 0);
        return data;
    }

    [Fact]
    public void Parse_qemu_overlay_reads_the_fields_qemu_wrote()
    {
        byte[] data = OverRaw();
        QedHeader header = QedHeader.Parse(data, FileLength);
        Assert.Equal(65536u, header.ClusterSize);
        Assert.Equal(4u, header.TableSize);
        Assert.Equal(1u, header.HeaderSize);
        Assert.Equal(QedFeatures.BackingFile | QedFeatures.BackingFormatNoProbe, header.Features);
        Assert.Equal(1048576UL, header.ImageSize);
        Assert.Equal("base.raw", header.GetBackingFileName(data));
        Assert.Equal("raw", header.BackingFormat);
    }

    [Fact]
    public void Backing_without_the_no_probe_bit_has_no_recorded_format()
    {
        byte[] data = OverRaw();
        data[16] = 1;
        Assert.Null(QedHeader.Parse(data, FileLength).BackingFormat);
    }

    [Theory]
    [InlineData("unknown feature", 16, 8u, HeaderError.UnsupportedFeature)]
    [InlineData("cluster not power of 2", 4, 0x10001u, HeaderError.InvalidSize)]
    [InlineData("cluster 2K", 4, 2048u, HeaderError.InvalidSize)]
    [InlineData("cluster 128M", 4, 128u << 20, HeaderError.InvalidSize)]
    [InlineData("table 3", 8, 3u, HeaderError.InvalidSize)]
    [InlineData("table 32", 8, 32u, HeaderError.InvalidSize)]
    [InlineData("table 1", 8, 1u, HeaderError.InvalidOffset)]
    [InlineData("image size not sector multiple", 48, 1000u, HeaderError.InvalidSize)]
    [InlineData("l1 misaligned", 40, 0x10200u, HeaderError.InvalidOffset)]
    [InlineData("l1 past end of file", 40, 0x100000u, HeaderError.InvalidOffset)]
    [InlineData("header huge", 12, 0x10000u, HeaderError.InvalidOffset)]
    [InlineData("name outside header", 60, 70000u, HeaderError.InvalidOffset)]
    public void TryParse_out_of_range_field_fails(string label, int offset, uint value, HeaderError expected)
    {
        _ = label;
        byte[] data = OverRaw();
        if (offset is 16 or 40 or 48)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(offset), value);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(offset), value);
        }

        Assert.False(QedHeader.TryParse(data, FileLength, out _, out HeaderError error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void TryParse_random_bytes_never_throws()
    {
        var random = new Random(4321);
        byte[] data = OverRaw();
        for (int i = 0; i < 20000; i++)
        {
            byte[] mutated = (byte[])data.Clone();
            for (int j = 0; j < 3; j++)
            {
                mutated[random.Next(4, 72)] = (byte)random.Next(256);
            }

            _ = QedHeader.TryParse(mutated.AsSpan(0, random.Next(0, 100)), random.Next(), out _, out _);
            _ = QedHeader.TryParse(mutated, long.MaxValue, out _, out _);
        }
    }

    [Fact]
    public void TryParse_allocates_nothing()
    {
        byte[] data = OverRaw();
        Assert.True(QedHeader.TryParse(data, FileLength, out _, out _));
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool ok = QedHeader.TryParse(data, FileLength, out QedHeader header, out _);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.True(ok);
        Assert.True(header.HasBackingFile);
        Assert.Equal(0, after - before);
    }
}
