using System;
using System.IO;
using System.Runtime.InteropServices;
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
internal sealed class FileImageSource : IImageSource, IKnownImageSource
{
    // Either a handle (every source a caller opens) or, for a source a walk reuses from layer to layer (Reopen), a
    // bare descriptor the walk always disposes: -1 when there is none.
    private readonly SafeFileHandle? _handle;
    private readonly bool _directReads;
    private int _descriptor = -1;
    private string? _canonicalPath;

    private FileImageSource(string name, SafeFileHandle? handle, long length, long? allocated, ImageSourceIdentity identity, bool directReads = false)
    {
        Name = name;
        _handle = handle;
        _directReads = directReads;
        Length = length;
        AllocatedSize = allocated;
        Identity = identity;
    }

    /// <inheritdoc/>
    public string Name { get; private set; }

    /// <inheritdoc/>
    public long Length { get; private set; }

    /// <inheritdoc/>
    public long? AllocatedSize { get; private set; }

    /// <inheritdoc/>
    public ImageSourceIdentity Identity { get; private set; }

    /// <summary>
    /// The path the kernel has for what was opened (<c>/proc/self/fd/N</c>: every symlink resolved, as of the
    /// open), or <see langword="null"/> where that cannot be known (not Linux, /proc not mounted). Read once.
    /// </summary>
    internal string? CanonicalPath => _canonicalPath ??=
        _descriptor >= 0 ? UnixFile.DescriptorPath(_descriptor)
        : _directReads && _handle is not null ? UnixFile.DescriptorPath(_handle)
        : null;

    /// <summary>
    /// The opened file's change time (<c>st_ctime</c>, nanoseconds), or <see langword="null"/> where it is not known:
    /// with the identity and length it tells whether a header read earlier is still the file's.
    /// </summary>
    public long? ChangeStamp { get; private set; }

    /// <summary>Whether what was opened is a regular file (not a block device): only regular files are hashed for pinned digests.</summary>
    internal bool IsRegularFile { get; private set; }

    /// <inheritdoc/>
    bool IKnownImageSource.ReadsSynchronously => true;

    /// <inheritdoc/>
    bool IKnownImageSource.IsDevice => !IsRegularFile;

    /// <inheritdoc/>
    bool IKnownImageSource.ProtocolAnswersGetInfo => true;

    /// <summary>Whether <see cref="Reopen"/> made this source (over a bare descriptor), so a walk may fill it in again once it is disposed.</summary>
    internal bool IsReopened => _handle is null;

    /// <summary>Opens a file for reading.</summary>
    /// <param name="path">The path, kept verbatim as the source's <see cref="Name"/>.</param>
    /// <returns>The source.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="IOException">The file cannot be opened or is not a regular file or block device.</exception>
    /// <exception cref="UnauthorizedAccessException">Access is denied.</exception>
    public static FileImageSource Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!UnixFile.IsSupported)
        {
            return OpenWithDotNet(path);
        }

        // A non-blocking open, so a FIFO (even one swapped in at the last moment) cannot hang us; the type,
        // identity and size come from the descriptor, never from a name looked up before. Failures throw what
        // File.OpenHandle would have thrown.
        return UnixFile.TryOpen(path, UnixFile.ReadOnly, out SafeFileHandle handle, out UnixFileStatus status, out int errno) switch
        {
            UnixOpenResult.Opened => FromDescriptor(path, handle, status, canonicalPath: null),
            UnixOpenResult.NotAFileOrBlockDevice => throw NotAFile(path),
            _ => throw UnixErrors.ForOpen(errno, path),
        };
    }

    /// <summary>
    /// Opens a file for a walk that reads one layer at a time: the same checks as <see cref="Open"/>, but where the
    /// kernel allows it the object <paramref name="spare"/> (a source from an earlier <see cref="Reopen"/>, disposed,
    /// and no longer referred to) is filled in again, over a bare descriptor rather than a handle, so a deep walk does
    /// not leave a source and a handle behind per layer. The walk must dispose what it gets.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="IOException">The file cannot be opened or is not a regular file or block device.</exception>
    /// <exception cref="UnauthorizedAccessException">Access is denied.</exception>
    /// <param name="path">The path, kept verbatim as the source's <see cref="Name"/>.</param>
    /// <param name="spare">A source to fill in again, or <see langword="null"/>.</param>
    /// <param name="directory">
    /// -1, or a descriptor of the directory <paramref name="path"/> names up to its last <c>/</c>
    /// (<see cref="UnixFile.TryOpenDirectory"/>), from which only the last component is looked up.
    /// </param>
    internal static FileImageSource Reopen(string path, FileImageSource? spare, int directory = -1)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!UnixFile.IsSupported)
        {
            return OpenWithDotNet(path);
        }

        switch (UnixFile.TryOpenDescriptor(path, directory, out int descriptor, out UnixFileStatus status, out int errno))
        {
            case UnixOpenResult.Opened:
                break;
            case UnixOpenResult.NotAFileOrBlockDevice:
                throw NotAFile(path);
            default:
                throw UnixErrors.ForOpen(errno, path);
        }

        long length = status.IsRegularFile ? status.Size : -1;
        if (length < 0 && !TryGetDeviceLength(descriptor, out length))
        {
            UnixFile.Close(descriptor);
            throw new IOException($"Could not read the size of '{path}'.");
        }

        FileImageSource source = spare is { _handle: null, _descriptor: < 0 } ? spare
            : new FileImageSource(path, null, 0, null, default, directReads: true);
        source.Name = path;
        source._descriptor = descriptor;
        source._canonicalPath = null;
        source.Length = length;
        source.AllocatedSize = status.Blocks * 512;
        source.Identity = ImageSourceIdentity.ForFile(status.Device, status.Inode);
        source.IsRegularFile = status.IsRegularFile;
        source.ChangeStamp = status.IsRegularFile ? status.ChangeTime : null;
        return source;
    }

    private static bool TryGetDeviceLength(int descriptor, out long length)
    {
        // A block device's size is not in its status: ask through a handle that does not own the descriptor.
        using var borrowed = new SafeFileHandle(descriptor, ownsHandle: false);
        try
        {
            length = RandomAccess.GetLength(borrowed);
            return true;
        }
        catch (IOException)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>
    /// Opens <paramref name="path"/> for reading only if what is opened lies beneath <paramref name="rootDirectory"/>
    /// with every symlink resolved; the decision is made on the opened descriptor (or by the kernel during the
    /// lookup), never on a name looked up earlier, so a symlink swapped during the call cannot lead outside.
    /// </summary>
    /// <param name="rootDirectory">The trusted directory (absolute, or relative to the working directory; symlinks in it are fine).</param>
    /// <param name="path">The file: absolute, or relative to the working directory (as qemu opens a resolved backing name).</param>
    /// <returns>What happened; the caller owns <see cref="ConfinedOpenResult.Source"/> when the outcome is <see cref="ConfinedOpenOutcome.Opened"/>.</returns>
    /// <remarks>
    /// On Linux 5.6 and later the lookup is <c>openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)</c> from an
    /// <c>O_PATH</c> descriptor of the root. On older kernels the file is opened (without blocking) from that
    /// descriptor and its real path, read back from <c>/proc/self/fd</c>, must lie under the root's; a name
    /// whose symlinks resolve outside is refused before it is opened, so only a swap racing the call can make
    /// something outside be opened (and then closed unread). Elsewhere than Linux the decision is on names.
    /// </remarks>
    internal static ConfinedOpenResult OpenBeneath(string rootDirectory, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(rootDirectory);
        ArgumentException.ThrowIfNullOrEmpty(path);
        return UnixFile.IsSupported ? ConfinedOpen.Open(rootDirectory, path) : ConfinedOpen.OpenByName(rootDirectory, path);
    }

    /// <summary>Makes the source of a checked descriptor (a regular file or block device).</summary>
    internal static FileImageSource FromDescriptor(string name, SafeFileHandle handle, UnixFileStatus status, string? canonicalPath)
    {
        long length = status.IsRegularFile ? status.Size : RandomAccess.GetLength(handle);
        return new FileImageSource(name, handle, length, status.Blocks * 512, ImageSourceIdentity.ForFile(status.Device, status.Inode), directReads: true)
        {
            _canonicalPath = canonicalPath,
            IsRegularFile = status.IsRegularFile,
            ChangeStamp = status.IsRegularFile ? status.ChangeTime : null,
        };
    }

    /// <summary>Where there is no Linux descriptor API (Windows, macOS): .NET's open, with its own checks.</summary>
    private static FileImageSource OpenWithDotNet(string path)
    {
        SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        try
        {
            long length = RandomAccess.GetLength(handle);
            // File.OpenHandle opens files only (it refuses directories and, on Windows, devices).
            return new FileImageSource(path, handle, length, length, ImageSourceIdentity.ForKey("file", Path.GetFullPath(path))) { IsRegularFile = true };
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    internal static IOException NotAFile(string path) => new($"'{path}' is not a regular file or block device.");

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
            int read;
            if (_handle is null)
            {
                read = _descriptor >= 0 ? UnixFile.Read(_descriptor, buffer[total..], offset + total) : throw new ObjectDisposedException(Name);
                if (read < 0)
                {
                    throw UnixErrors.ForRead(Marshal.GetLastPInvokeError(), Name);
                }
            }
            else
            {
                read = _directReads ? UnixFile.Read(_handle, buffer[total..], offset + total) : -1;
                if (read < 0)
                {
                    // Not opened by UnixFile, or pread failed: RandomAccess retries, or throws as it always did.
                    read = RandomAccess.Read(_handle, buffer[total..], offset + total);
                }
            }

            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    /// <summary>
    /// Disposes a source from <see cref="Reopen"/> without closing its descriptor, which the caller now owns and must
    /// close (a walk closes the descriptors of the layers it has read a batch at a time); -1 when there is none.
    /// </summary>
    internal int DetachDescriptor()
    {
        int descriptor = _descriptor;
        _descriptor = -1;
        return descriptor;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_handle is not null)
        {
            _handle.Dispose();
        }
        else if (_descriptor >= 0)
        {
            UnixFile.Close(_descriptor);
            _descriptor = -1;
        }
    }
}
