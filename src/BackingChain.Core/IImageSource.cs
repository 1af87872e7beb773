using System;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain;

/// <summary>
/// Random-access bytes of one image: positional reads with no shared cursor, so one source can serve
/// several readers at once.
/// </summary>
/// <remarks>
/// <see cref="ReadAtAsync"/> may be called concurrently on one source; <see cref="IDisposable.Dispose"/> and
/// <see cref="IAsyncDisposable.DisposeAsync"/> may not be called while a read is in progress. A source can be disposed either way
/// (<c>await using</c> in asynchronous code); a source whose release does no I/O need not implement
/// <see cref="IAsyncDisposable.DisposeAsync"/>: the default calls <see cref="IDisposable.Dispose"/>.
/// </remarks>
public interface IImageSource : IDisposable, IAsyncDisposable
{
    /// <summary>The name the image is known by, as qemu would print it (a path as given, or a URI).</summary>
    string Name { get; }

    /// <summary>The length of the image in bytes.</summary>
    long Length { get; }

    /// <summary>The bytes the image occupies on its storage (qemu's <c>actual-size</c>), when the source knows it.</summary>
    long? AllocatedSize { get; }

    /// <summary>What makes two sources the same image, whatever names they were reached by.</summary>
    ImageSourceIdentity Identity { get; }

    /// <summary>Reads up to <paramref name="buffer"/>'s length from <paramref name="offset"/>.</summary>
    /// <param name="offset">The position to read from.</param>
    /// <param name="buffer">Where to put the bytes.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The number of bytes read; less than asked only at the end of the image.</returns>
    ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>Releases the source; by default the same as <see cref="IDisposable.Dispose"/>.</summary>
    /// <returns>A task that completes when the source is released.</returns>
    ValueTask IAsyncDisposable.DisposeAsync()
    {
        Dispose();
        GC.SuppressFinalize(this);
        return default;
    }
}
