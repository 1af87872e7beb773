using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// A <see cref="PipeReader"/> that hands out an upload in segments of exactly one chunk size, produced lazily (so a
/// 2 GiB upload never exists in memory), and records how many unconsumed bytes it ever had to hold: a consumer that
/// does not advance makes that number grow.
/// </summary>
internal sealed class ChunkedPipeReader : PipeReader
{
    private readonly Func<long, int, ReadOnlyMemory<byte>> _content;
    private readonly long _length;
    private readonly int _chunkSize;
    private readonly List<ReadOnlyMemory<byte>> _pending = [];
    private ReadOnlySequence<byte> _lastBuffer;
    private bool _examinedAll = true;
    private bool _cancelNext;
    private bool _inRead;

    /// <param name="content">Returns the bytes of [offset, offset + count).</param>
    /// <param name="length">The upload's length.</param>
    /// <param name="chunkSize">The size of every segment (the last may be shorter).</param>
    public ChunkedPipeReader(Func<long, int, ReadOnlyMemory<byte>> content, long length, int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        _content = content;
        _length = length;
        _chunkSize = chunkSize;
    }

    public static ChunkedPipeReader Over(byte[] data, int chunkSize) =>
        new((offset, count) => data.AsMemory((int)offset, count), data.Length, chunkSize);

    /// <summary>An upload of <paramref name="prefix"/> followed by zeros up to <paramref name="length"/>, produced without holding it.</summary>
    public static ChunkedPipeReader PrefixThenZeros(byte[] prefix, long length, int chunkSize)
    {
        byte[] zeros = new byte[chunkSize];
        return new((offset, count) =>
        {
            if (offset + count <= prefix.Length)
            {
                return prefix.AsMemory((int)offset, count);
            }

            if (offset >= prefix.Length)
            {
                return zeros.AsMemory(0, count);
            }

            byte[] mixed = new byte[count];
            prefix.AsSpan((int)offset).CopyTo(mixed);
            return mixed;
        }, length, chunkSize);
    }

    /// <summary>Bytes handed out so far.</summary>
    public long Produced { get; private set; }

    /// <summary>The largest buffer (unconsumed bytes) ever returned by a read.</summary>
    public long MaxBufferLength { get; private set; }

    /// <summary>How many reads were served.</summary>
    public int Reads { get; private set; }

    /// <summary>Called after each chunk is produced, with the total produced so far (to cancel mid-stream, say).</summary>
    public Action<long>? AfterChunk { get; set; }

    public bool IsCompletedByConsumer { get; private set; }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return new ValueTask<ReadResult>(Read());
    }

    public override bool TryRead(out ReadResult result)
    {
        // Every read completes at once here: the content is produced on demand.
        result = Read();
        return true;
    }

    private ReadResult Read()
    {
        if (_inRead)
        {
            throw new InvalidOperationException("ReadAsync called twice without AdvanceTo.");
        }

        if (_cancelNext)
        {
            _cancelNext = false;
            _lastBuffer = ChunkSequence.Build(_pending);
            _inRead = true;
            return new ReadResult(_lastBuffer, isCanceled: true, isCompleted: false);
        }

        if (_examinedAll && Produced < _length)
        {
            int count = (int)Math.Min(_chunkSize, _length - Produced);
            ReadOnlyMemory<byte> chunk = _content(Produced, count);
            if (chunk.Length != count)
            {
                throw new InvalidOperationException("Content returned the wrong length.");
            }

            _pending.Add(chunk);
            Produced += count;
            AfterChunk?.Invoke(Produced);
        }

        _lastBuffer = ChunkSequence.Build(_pending);
        MaxBufferLength = Math.Max(MaxBufferLength, _lastBuffer.Length);
        Reads++;
        _inRead = true;
        return new ReadResult(_lastBuffer, isCanceled: false, isCompleted: Produced == _length);
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (!_inRead)
        {
            throw new InvalidOperationException("AdvanceTo without a read.");
        }

        _inRead = false;
        long remaining = _lastBuffer.Slice(consumed).Length;
        _examinedAll = _lastBuffer.Slice(examined).Length == 0;
        long drop = _lastBuffer.Length - remaining;
        while (drop > 0)
        {
            ReadOnlyMemory<byte> first = _pending[0];
            if (first.Length <= drop)
            {
                drop -= first.Length;
                _pending.RemoveAt(0);
            }
            else
            {
                _pending[0] = first[(int)drop..];
                drop = 0;
            }
        }
    }

    public override void CancelPendingRead() => _cancelNext = true;

    public override void Complete(Exception? exception = null) => IsCompletedByConsumer = true;
}
