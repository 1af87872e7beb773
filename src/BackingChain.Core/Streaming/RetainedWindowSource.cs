using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Formats;

namespace BackingChain.Streaming;

/// <summary>
/// An <see cref="IImageSource"/> over what an upload retained, once it has ended: the format readers read it
/// exactly as they read a file, so one parse path serves spans, files and streams. A read that needs a byte
/// that was not retained is recorded as a miss and fails with <see cref="ImageFormatException"/>; the inspector
/// turns misses into a finding and a rejection instead of ever buffering more.
/// </summary>
/// <remarks>
/// A miss throws rather than returning a short read: readers take a short read for the end of the file, and one
/// that re-reads until a structure fits would loop forever on a range that can never be served.
/// </remarks>
internal sealed class RetainedWindowSource : IImageSource, IRetainedImageSource
{
    private const int MaxRecordedMisses = 16;

    private readonly RetainedWindows _windows;
    private readonly List<(long Offset, long Length)> _misses = [];

    public RetainedWindowSource(RetainedWindows windows, string name)
    {
        _windows = windows;
        Name = name;
        Identity = ImageSourceIdentity.ForKey("upload", name);
    }

    public string Name { get; }

    public long Length => _windows.Length;

    public long? AllocatedSize => null;

    public ImageSourceIdentity Identity { get; }

    /// <summary>The ranges readers asked for that lay outside the windows (the first few).</summary>
    public IReadOnlyList<(long Offset, long Length)> Misses => _misses;

    /// <summary>Whether any read asked for bytes that were not retained.</summary>
    public bool HasMisses => MissCount > 0;

    /// <summary>How many reads asked for bytes that were not retained.</summary>
    public int MissCount { get; private set; }

    public ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        cancellationToken.ThrowIfCancellationRequested();
        if (offset >= Length || buffer.IsEmpty)
        {
            return new ValueTask<int>(0);
        }

        int count = (int)Math.Min(buffer.Length, Length - offset);
        if (_windows.TryCopy(offset, buffer.Span[..count]))
        {
            return new ValueTask<int>(count);
        }

        throw Miss(offset, count);
    }

    /// <summary>
    /// The zero-copy path: the retained bytes of a range as one piece of memory; a range not wholly retained is a
    /// miss. Saves readers from allocating a buffer for a range that cannot be served.
    /// </summary>
    public ReadOnlyMemory<byte> GetRetained(long offset, int count)
    {
        if (offset < 0 || offset >= Length || count <= 0)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        count = (int)Math.Min(count, Length - offset);
        if (_windows.TryGetMemory(offset, count, out ReadOnlyMemory<byte> first, out ReadOnlyMemory<byte> second))
        {
            if (second.IsEmpty)
            {
                return first;
            }

            // Across the seam of contiguous windows: one small copy of a range that is retained anyway.
            byte[] joined = new byte[count];
            first.CopyTo(joined);
            second.CopyTo(joined.AsMemory(first.Length));
            return joined;
        }

        throw Miss(offset, count);
    }

    public void Dispose()
    {
        // The windows belong to the inspector, which returns their buffers.
    }

    private ImageFormatException Miss(long offset, long length)
    {
        // Count every miss but keep only the first few ranges, so a reader that loops cannot grow the list.
        MissCount++;
        if (_misses.Count < MaxRecordedMisses)
        {
            _misses.Add((offset, length));
        }

        return new ImageFormatException(
            HeaderError.Truncated,
            $"bytes {offset}..{offset + length} of '{Name}' were not kept while it streamed (the first {_windows.HeadCount} and the last {_windows.TailCount} bytes were)");
    }
}
