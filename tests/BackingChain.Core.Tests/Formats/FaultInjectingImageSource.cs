using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Tests.Formats;

/// <summary>
/// An in-memory image whose reads go wrong on purpose: the N-th read of a shared counter fails with EIO, or
/// every read returns fewer bytes than asked (never zero before the end, so a reader that loops still finishes).
/// </summary>
internal sealed class FaultInjectingImageSource : IImageSource
{
    private readonly byte[] _data;
    private readonly ReadCounter _counter;
    private readonly bool _shortReads;

    public FaultInjectingImageSource(string name, byte[] data, ReadCounter counter, bool shortReads = false)
    {
        Name = name;
        _data = data;
        _counter = counter;
        _shortReads = shortReads;
        Identity = ImageSourceIdentity.ForKey("fault", name);
    }

    public string Name { get; }

    public long Length => _data.Length;

    public long? AllocatedSize => _data.Length;

    public ImageSourceIdentity Identity { get; }

    public ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_counter.Next())
        {
            // What a failing disk gives: EIO from pread.
            throw new IOException("Input/output error");
        }

        if (offset >= _data.Length || buffer.IsEmpty)
        {
            return new ValueTask<int>(0);
        }

        int count = (int)Math.Min(buffer.Length, _data.Length - offset);
        if (_shortReads && count > 1)
        {
            // Short at every offset: at most half of what was asked, never more than 7 bytes.
            count = Math.Min(count / 2, 7);
        }

        _data.AsSpan((int)offset, count).CopyTo(buffer.Span);
        return new ValueTask<int>(count);
    }

    public void Dispose()
    {
    }

    /// <summary>Counts reads across every source of one attempt; the <see cref="FailAt"/>-th one fails (0: none).</summary>
    internal sealed class ReadCounter(int failAt)
    {
        public int FailAt { get; } = failAt;

        public int Count { get; private set; }

        public bool Next() => ++Count == FailAt;
    }
}
