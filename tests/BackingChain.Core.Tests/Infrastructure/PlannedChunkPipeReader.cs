using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// A <see cref="PipeReader"/> over bytes held in memory that adds one new segment per read, its length taken in turn
/// from a chunk plan (repeated when it runs out), so one upload can arrive in any chunking a property or a fuzzer
/// chooses. A consumer that leaves bytes unexamined gets them back together with the next chunk, as a real pipe does.
/// Shared by the unit tests and the fuzz harness (compiled into both).
/// </summary>
internal sealed class PlannedChunkPipeReader : PipeReader
{
    private readonly ReadOnlyMemory<byte> _data;
    private readonly IReadOnlyList<int> _plan;
    private readonly List<ReadOnlyMemory<byte>> _pending = [];
    private ReadOnlySequence<byte> _lastBuffer;
    private bool _examinedAll = true;
    private bool _inRead;
    private int _nextChunk;

    /// <param name="data">The whole upload.</param>
    /// <param name="plan">Chunk lengths, used in order and then again from the start; lengths below 1 count as 1.</param>
    public PlannedChunkPipeReader(ReadOnlyMemory<byte> data, IReadOnlyList<int> plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.Count == 0)
        {
            throw new ArgumentException("The chunk plan is empty.", nameof(plan));
        }

        _data = data;
        _plan = plan;
    }

    /// <summary>Bytes handed out so far.</summary>
    public int Produced { get; private set; }

    /// <summary>Whether the consumer called <see cref="Complete"/>.</summary>
    public bool IsCompletedByConsumer { get; private set; }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return new ValueTask<ReadResult>(Read());
    }

    public override bool TryRead(out ReadResult result)
    {
        result = Read();
        return true;
    }

    private ReadResult Read()
    {
        if (_inRead)
        {
            throw new InvalidOperationException("ReadAsync called twice without AdvanceTo.");
        }

        if (_examinedAll && Produced < _data.Length)
        {
            int planned = Math.Max(1, _plan[_nextChunk++ % _plan.Count]);
            int count = Math.Min(planned, _data.Length - Produced);
            _pending.Add(_data.Slice(Produced, count));
            Produced += count;
        }

        _lastBuffer = ChunkSequence.Build(_pending);
        _inRead = true;
        return new ReadResult(_lastBuffer, isCanceled: false, isCompleted: Produced == _data.Length);
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (!_inRead)
        {
            throw new InvalidOperationException("AdvanceTo without a read.");
        }

        _inRead = false;
        long drop = _lastBuffer.Length - _lastBuffer.Slice(consumed).Length;
        _examinedAll = _lastBuffer.Slice(examined).Length == 0;
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

    public override void CancelPendingRead() => throw new NotSupportedException("Planned chunks are never pending.");

    public override void Complete(Exception? exception = null) => IsCompletedByConsumer = true;
}
