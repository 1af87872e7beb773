using System;
using BackingChain.Streaming;

namespace BackingChain.Tests.Streaming;

public sealed class RetainedWindowsTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void TryCopy_random_uploads_and_chunkings_serves_exactly_the_retained_bytes(int seed)
    {
        var random = new Random(seed);
        for (int round = 0; round < 200; round++)
        {
            int length = random.Next(0, 20_000);
            int headLimit = random.Next(512, 6_000);
            int tailCapacity = random.Next(0, 6_000);
            byte[] data = new byte[length];
            random.NextBytes(data);
            bool limitToProbe = random.Next(2) == 0;

            using var windows = new RetainedWindows(headLimit, tailCapacity);
            int offset = 0;
            bool applied = false;
            while (offset < length)
            {
                int chunk = Math.Min(length - offset, random.Next(1, 3_000));
                windows.Append(data.AsSpan(offset, chunk));
                offset += chunk;
                if (limitToProbe && windows.Length <= 512)
                {
                    windows.LimitHead(512);
                    applied = true;
                }
            }

            windows.Complete();
            int head = Math.Min(length, applied ? 512 : headLimit);
            long tailStart = Math.Max(head, length - (long)tailCapacity);
            Assert.Equal(head, windows.HeadCount);
            Assert.Equal(length, windows.Length);
            Assert.Equal(tailStart, windows.TailStart);
            Assert.True(windows.PeakBufferBytes <= Pooled(headLimit) + Pooled(Math.Min(headLimit, 64 * 1024)) + Pooled(tailCapacity));

            for (int probe = 0; probe < 50; probe++)
            {
                int start = random.Next(0, length + 1);
                int count = random.Next(0, Math.Min(length - start, 4_000) + 1);
                byte[] copy = new byte[count];
                bool retained = start + count <= windows.HeadCount || start >= tailStart || tailStart == windows.HeadCount;
                Assert.Equal(retained, windows.TryCopy(start, copy));
                if (retained)
                {
                    Assert.True(data.AsSpan(start, count).SequenceEqual(copy));
                }
            }
        }
    }

    [Fact]
    public void LimitHead_after_bytes_went_past_the_new_limit_is_ignored()
    {
        using var windows = new RetainedWindows(4096, 0);
        windows.Append(new byte[1000]);

        windows.LimitHead(512);
        windows.Append(new byte[1000]);

        Assert.Equal(2000, windows.HeadCount);
    }

    [Fact]
    public void Ring_keeps_the_last_bytes_across_many_wraps()
    {
        using var windows = new RetainedWindows(512, 1000);
        byte[] data = new byte[100_000];
        new Random(7).NextBytes(data);
        for (int offset = 0; offset < data.Length; offset += 333)
        {
            windows.Append(data.AsSpan(offset, Math.Min(333, data.Length - offset)));
        }

        windows.Complete();

        Assert.Equal(data.AsSpan(^1000).ToArray(), windows.Tail.ToArray());
        Assert.False(windows.TryCopy(512, new byte[10])); // dropped: between the windows
    }

    [Fact]
    public void Append_after_complete_throws()
    {
        using var windows = new RetainedWindows(512, 0);
        windows.Complete();

        Assert.Throws<InvalidOperationException>(() => windows.Append(new byte[1]));
    }

    private static long Pooled(int size) => size == 0 ? 0 : (long)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(size, 16));
}
