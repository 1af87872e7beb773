using System;
using BackingChain.Formats.Vhdx;
using BackingChain.Formats.Vpc;

namespace BackingChain.Tests.Formats;

/// <summary>
/// The hardware CRC-32C and the vectorized VHD byte sum must give exactly what the byte-at-a-time loops they
/// replaced gave, for every length (so every vector tail and every position of the skipped field is covered).
/// </summary>
public sealed class ChecksumEquivalenceTests
{
    private const int MaxLength = 9000;

    [Fact]
    public void Crc32C_matches_the_bytewise_table_loop_for_every_length()
    {
        byte[] buffer = RandomBuffer(MaxLength, seed: 1);
        for (int length = 0; length <= MaxLength; length++)
        {
            ReadOnlySpan<byte> data = buffer.AsSpan(0, length);
            int offset = length == 0 ? 0 : (length * 7919) % length;
            Assert.Equal(ReferenceCrc(data, -4), Crc32C.Compute(data));
            Assert.Equal(ReferenceCrc(data, offset), Crc32C.ComputeSkipping(data, offset));
            Assert.Equal(ReferenceCrc(data, offset), Crc32C.ComputeSkippingPortable(data, offset));
        }
    }

    [Theory]
    [InlineData(-10)]
    [InlineData(-3)]
    [InlineData(0)]
    [InlineData(64)]
    [InlineData(4094)]
    [InlineData(4096)]
    public void Crc32C_skips_the_field_where_it_overlaps_the_data(int offset)
    {
        byte[] buffer = RandomBuffer(4096, seed: 2);
        Assert.Equal(ReferenceCrc(buffer, offset), Crc32C.ComputeSkipping(buffer, offset));
    }

    [Fact]
    public void Crc32C_of_the_standard_check_string()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }

    [Fact]
    public void Vhd_byte_sum_matches_the_bytewise_loop_for_every_length()
    {
        byte[] buffer = RandomBuffer(MaxLength, seed: 3);
        byte[] ones = new byte[MaxLength];
        ones.AsSpan().Fill(0xFF);
        for (int length = 0; length <= MaxLength; length++)
        {
            int offset = length == 0 ? 0 : (length * 7919) % length;
            Assert.Equal(ReferenceSum(buffer.AsSpan(0, length), offset), VhdFooter.SumExcluding(buffer.AsSpan(0, length), offset));

            // All 0xFF bytes: the largest per-lane sums, to catch a 16-bit lane overflowing.
            Assert.Equal(ReferenceSum(ones.AsSpan(0, length), offset), VhdFooter.SumExcluding(ones.AsSpan(0, length), offset));
        }
    }

    [Theory]
    [InlineData(-10)]
    [InlineData(-2)]
    [InlineData(510)]
    [InlineData(512)]
    public void Vhd_byte_sum_skips_the_field_where_it_overlaps_the_data(int offset)
    {
        byte[] buffer = RandomBuffer(512, seed: 4);
        Assert.Equal(ReferenceSum(buffer, offset), VhdFooter.SumExcluding(buffer, offset));
    }

    private static byte[] RandomBuffer(int length, int seed)
    {
        var buffer = new byte[length];
        new Random(seed).NextBytes(buffer);
        return buffer;
    }

    // The implementations as they were before the fast paths, kept here as the reference.
    private static uint ReferenceCrc(ReadOnlySpan<byte> data, int checksumOffset)
    {
        uint crc = 0xFFFFFFFF;
        for (int i = 0; i < data.Length; i++)
        {
            byte value = i >= checksumOffset && i < checksumOffset + sizeof(uint) ? (byte)0 : data[i];
            crc ^= value;
            for (int bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
            }
        }

        return ~crc;
    }

    private static uint ReferenceSum(ReadOnlySpan<byte> data, int checksumOffset)
    {
        uint sum = 0;
        for (int i = 0; i < data.Length; i++)
        {
            if (i < checksumOffset || i >= checksumOffset + sizeof(uint))
            {
                sum += data[i];
            }
        }

        return ~sum;
    }
}
