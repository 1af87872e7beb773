using System;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Sources;

/// <summary>An image held in memory, for tests and for embedding.</summary>
internal sealed class MemoryImageSource : IImageSource
{
    private readonly ReadOnlyMemory<byte> _data;

    /// <summary>Creates the source.</summary>
    /// <param name="name">The image's name; also its identity, so give each image its own name.</param>
    /// <param name="data">The image's bytes.</param>
    public MemoryImageSource(string name, ReadOnlyMemory<byte> data)
    {
        ArgumentNullException.ThrowIfNull(name);
        Name = name;
        _data = data;
        Identity = ImageSourceIdentity.ForKey("memory", name);
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public long Length => _data.Length;

    /// <inheritdoc/>
    public long? AllocatedSize => _data.Length;

    /// <inheritdoc/>
    public ImageSourceIdentity Identity { get; }

    /// <inheritdoc/>
    public ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset >= _data.Length)
        {
            return new ValueTask<int>(0);
        }

        ReadOnlySpan<byte> available = _data.Span[(int)offset..];
        int count = Math.Min(available.Length, buffer.Length);
        available[..count].CopyTo(buffer.Span);
        return new ValueTask<int>(count);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
