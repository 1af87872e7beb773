using System;
using System.Buffers;

namespace BackingChain.Streaming;

/// <summary>
/// The only bytes of a forward-only upload that are kept: a head window (the first bytes, up to a limit that
/// may be lowered once the format is known) and a tail window (a ring holding the last bytes seen past the
/// head). Everything else is dropped as it passes, so what is held never exceeds the two capacities.
/// </summary>
/// <remarks>
/// Buffers come from <see cref="ArrayPool{T}.Shared"/> and grow with the data, so a small upload holds
/// little. The tail ring only receives bytes that lie past the head window, so the two windows never
/// overlap and, when the upload is shorter than head plus tail, they are contiguous.
/// </remarks>
internal sealed class RetainedWindows : IDisposable
{
    private const int InitialHeadBuffer = 64 * 1024;

    private readonly int _tailCapacity;
    private int _headLimit;
    private byte[] _head = [];
    private int _headCount;
    private byte[]? _ring;
    private int _ringCount;
    private int _ringNext;
    private bool _completed;

    public RetainedWindows(int headLimit, int tailCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(headLimit);
        ArgumentOutOfRangeException.ThrowIfNegative(tailCapacity);
        _headLimit = headLimit;
        _tailCapacity = tailCapacity;
    }

    /// <summary>Bytes seen so far.</summary>
    public long Length { get; private set; }

    /// <summary>Bytes held in the head window.</summary>
    public int HeadCount => _headCount;

    /// <summary>Bytes held in the tail window.</summary>
    public int TailCount => _ringCount;

    /// <summary>The offset of the first tail byte (valid once completed).</summary>
    public long TailStart => Length - _ringCount;

    /// <summary>The most array memory held at once, in bytes: what the bound is checked against.</summary>
    public long PeakBufferBytes { get; private set; }

    /// <summary>The head window's bytes.</summary>
    public ReadOnlyMemory<byte> Head => _head.AsMemory(0, _headCount);

    /// <summary>The tail window's bytes, oldest first; valid once <see cref="Complete"/> has run.</summary>
    public ReadOnlyMemory<byte> Tail => _completed && _ring is not null ? _ring.AsMemory(0, _ringCount) : ReadOnlyMemory<byte>.Empty;

    /// <summary>
    /// Lowers the head limit (for a format that needs no more than its probe). Only allowed while nothing
    /// has gone past the new limit, so the ring never has to take bytes older than the ones it holds.
    /// </summary>
    public void LimitHead(int limit)
    {
        if (limit < _headLimit && Length <= limit)
        {
            _headLimit = limit;
        }
    }

    /// <summary>Takes the next bytes of the upload.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        if (_completed)
        {
            throw new InvalidOperationException("The upload has already ended.");
        }

        if (Length < _headLimit && !data.IsEmpty)
        {
            int take = (int)Math.Min(data.Length, _headLimit - Length);
            EnsureHeadCapacity(_headCount + take);
            data[..take].CopyTo(_head.AsSpan(_headCount));
            _headCount += take;
            Length += take;
            data = data[take..];
        }

        if (data.IsEmpty)
        {
            return;
        }

        if (_tailCapacity > 0)
        {
            WriteRing(data);
        }

        Length += data.Length;
    }

    /// <summary>Marks the end of the upload and lays the ring out oldest first.</summary>
    public void Complete()
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        if (_ring is not null && _ringCount == _tailCapacity && _ringNext != 0)
        {
            // Rotate left by _ringNext in place (three reversals), so no second tail-sized buffer is needed.
            Span<byte> ring = _ring.AsSpan(0, _tailCapacity);
            ring[.._ringNext].Reverse();
            ring[_ringNext..].Reverse();
            ring.Reverse();
            _ringNext = 0;
        }
    }

    /// <summary>
    /// Copies <paramref name="destination"/>'s length of bytes from <paramref name="offset"/> when every one of
    /// them was retained; the caller has already clipped the range to <see cref="Length"/>.
    /// </summary>
    public bool TryCopy(long offset, Span<byte> destination)
    {
        if (!TryGetMemory(offset, destination.Length, out ReadOnlyMemory<byte> first, out ReadOnlyMemory<byte> second))
        {
            return false;
        }

        first.Span.CopyTo(destination);
        second.Span.CopyTo(destination[first.Length..]);
        return true;
    }

    /// <summary>
    /// Gets the retained bytes of a range without copying: one piece, or two when it spans the seam between
    /// contiguous head and tail windows.
    /// </summary>
    public bool TryGetMemory(long offset, int count, out ReadOnlyMemory<byte> first, out ReadOnlyMemory<byte> second)
    {
        first = ReadOnlyMemory<byte>.Empty;
        second = ReadOnlyMemory<byte>.Empty;
        if (offset < 0 || count < 0 || offset > Length || count > Length - offset)
        {
            return false;
        }

        long end = offset + count;
        if (end <= _headCount)
        {
            first = _head.AsMemory((int)offset, count);
            return true;
        }

        ReadOnlyMemory<byte> tail = Tail;
        long tailStart = TailStart;
        if (!_completed || end > Length)
        {
            return false;
        }

        if (offset >= tailStart)
        {
            first = tail.Slice((int)(offset - tailStart), count);
            return true;
        }

        // Spans the seam: only when nothing was dropped between the head and the tail.
        if (tailStart == _headCount)
        {
            first = _head.AsMemory((int)offset, _headCount - (int)offset);
            second = tail[..(int)(end - tailStart)];
            return true;
        }

        return false;
    }

    public void Dispose()
    {
        // Cleared on return: the bytes are a guest's disk, and pooled arrays are handed to unrelated code next.
        if (_head.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_head, clearArray: true);
            _head = [];
        }

        if (_ring is not null)
        {
            ArrayPool<byte>.Shared.Return(_ring, clearArray: true);
            _ring = null;
        }

        _headCount = 0;
        _ringCount = 0;
    }

    private void EnsureHeadCapacity(int needed)
    {
        if (needed <= _head.Length)
        {
            return;
        }

        // Two steps only: a small first buffer, so a short upload holds little, then the whole limit at once.
        // Growing by doubling would hold old and new buffers together several times over.
        int size = needed <= InitialHeadBuffer ? Math.Min(_headLimit, InitialHeadBuffer) : _headLimit;
        byte[] grown = ArrayPool<byte>.Shared.Rent(size);
        NotePeak(_head.Length + (long)grown.Length + (_ring?.Length ?? 0));
        _head.AsSpan(0, _headCount).CopyTo(grown);
        if (_head.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_head, clearArray: true);
        }

        _head = grown;
    }

    private void WriteRing(ReadOnlySpan<byte> data)
    {
        if (_ring is null)
        {
            _ring = ArrayPool<byte>.Shared.Rent(_tailCapacity);
            NotePeak(_head.Length + (long)_ring.Length);
        }

        Span<byte> ring = _ring.AsSpan(0, _tailCapacity);
        if (data.Length >= _tailCapacity)
        {
            // Only the last capacity bytes can survive; skip copying the rest.
            data[^_tailCapacity..].CopyTo(ring);
            _ringNext = 0;
            _ringCount = _tailCapacity;
            return;
        }

        int first = Math.Min(data.Length, _tailCapacity - _ringNext);
        data[..first].CopyTo(ring[_ringNext..]);
        data[first..].CopyTo(ring);
        _ringNext = (_ringNext + data.Length) % _tailCapacity;
        _ringCount = Math.Min(_tailCapacity, _ringCount + data.Length);
    }

    private void NotePeak(long bytes)
    {
        if (bytes > PeakBufferBytes)
        {
            PeakBufferBytes = bytes;
        }
    }
}
