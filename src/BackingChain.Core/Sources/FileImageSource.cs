using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Internal;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Sources;

/// <summary>
/// A local file read with <see cref="RandomAccess"/> on a <see cref="SafeFileHandle"/>: positional reads,
/// no stream and no shared cursor.
/// </summary>
/// <remarks>
/// Only regular files and block devices are opened: a FIFO or a character device named by a hostile
/// backing reference must not block or feed endless data. Reads complete synchronously (a header read
/// from the page cache costs less than scheduling it on the thread pool).
/// </remarks>
public sealed class FileImageSource : IImageSource
{
    private readonly SafeFileHandle _handle;
    private readonly bool _directReads;

    private FileImageSource(string name, SafeFileHandle handle, long length, long? allocated, ImageSourceIdentity identity, bool directReads = false)
    {
        Name = name;
        _handle = handle;
        _directReads = directReads;
        Length = length;
        AllocatedSize = allocated;
        Identity = identity;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public long Length { get; }

    /// <inheritdoc/>
    public long? AllocatedSize { get; }

    /// <inheritdoc/>
    public ImageSourceIdentity Identity { get; }

    /// <summary>Whether what was opened is a regular file (not a block device): only regular files are hashed for pinned digests.</summary>
    internal bool IsRegularFile { get; private init; }

    /// <summary>Opens a file for reading.</summary>
    /// <param name="path">The path, kept verbatim as the source's <see cref="Name"/>.</param>
    /// <returns>The source.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="IOException">The file cannot be opened or is not a regular file or block device.</exception>
    /// <exception cref="UnauthorizedAccessException">Access is denied.</exception>
    public static FileImageSource Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);

        // The lean path (Linux): a non-blocking open, so a FIFO cannot hang us, then the type, identity and size
        // from one fstat of the descriptor; reads go straight to pread.
        switch (UnixFile.TryOpenForReading(path, out SafeFileHandle fast, out UnixFileStatus fastStatus))
        {
            case UnixOpenResult.Opened:
                long fastLength = fastStatus.IsRegularFile ? fastStatus.Size : RandomAccess.GetLength(fast);
                return new FileImageSource(path, fast, fastLength, fastStatus.Blocks * 512, ImageSourceIdentity.ForFile(fastStatus.Device, fastStatus.Inode), directReads: true)
                {
                    IsRegularFile = fastStatus.IsRegularFile,
                };
            case UnixOpenResult.NotAFileOrBlockDevice:
                throw NotAFile(path);
        }

        // Elsewhere, or when the lean path failed: refuse FIFOs, sockets and character devices before a
        // blocking open(2) can hang on them.
        if (UnixFileStatus.TryGet(path, out UnixFileStatus before) && !before.IsRegularFile && !before.IsBlockDevice)
        {
            throw NotAFile(path);
        }

        SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        try
        {
            long length;
            long? allocated;
            ImageSourceIdentity identity;
            bool regular = false;
            if (UnixFileStatus.TryGet(handle, out UnixFileStatus status))
            {
                regular = status.IsRegularFile;
                length = status.IsRegularFile ? status.Size : RandomAccess.GetLength(handle);
                allocated = status.Blocks * 512;
                identity = ImageSourceIdentity.ForFile(status.Device, status.Inode);
            }
            else
            {
                length = RandomAccess.GetLength(handle);
                allocated = length;
                identity = ImageSourceIdentity.ForKey("file", Path.GetFullPath(path));
            }

            return new FileImageSource(path, handle, length, allocated, identity) { IsRegularFile = regular };
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static IOException NotAFile(string path) => new($"'{path}' is not a regular file or block device.");

    /// <inheritdoc/>
    public ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        try
        {
            return new ValueTask<int>(ReadAt(offset, buffer.Span));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ValueTask.FromException<int>(ex);
        }
    }

    /// <summary>Reads synchronously from <paramref name="offset"/>, looping over short reads.</summary>
    /// <param name="offset">The position.</param>
    /// <param name="buffer">Where to put the bytes.</param>
    /// <returns>The bytes read; less than asked only at the end of the file.</returns>
    public int ReadAt(long offset, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = _directReads ? UnixFile.Read(_handle, buffer[total..], offset + total) : -1;
            if (read < 0)
            {
                // Not opened by UnixFile, or pread failed: RandomAccess retries, or throws as it always did.
                read = RandomAccess.Read(_handle, buffer[total..], offset + total);
            }

            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();
}
