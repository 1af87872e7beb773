using System;
using BackingChain.Formats.Vpc;

namespace BackingChain.Tests.Formats;

/// <summary>
/// The vectorized VHD byte sum must give exactly what the byte-at-a-time loop it replaced gave, for every
/// length (so every vector tail and every position of the skipped field is covered).
/// </summary>
public sealed class ChecksumEquivalenceTests
{
    private const int MaxLength = 9000;

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

    // The implementation as it was before the fast path, kept here as the reference.
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
