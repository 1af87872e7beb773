using System;
using System.IO;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Editing;

/// <summary>One positional write of a header edit; the editor flushes to disk after each one.</summary>
/// <param name="Offset">Where in the file the bytes go.</param>
/// <param name="Data">The bytes.</param>
internal readonly record struct HeaderWrite(long Offset, byte[] Data);

/// <summary>Where the planned writes go: one durable write at a time (tests substitute one that fails the Nth).</summary>
internal interface IHeaderWriter
{
    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/> and makes it durable before returning.</summary>
    void Write(long offset, ReadOnlySpan<byte> data);
}

/// <summary>Writes to the image and flushes after each write, so the on-disk order is the planned order.</summary>
internal sealed class FileHeaderWriter(SafeFileHandle handle) : IHeaderWriter
{
    public static IHeaderWriter Create(SafeFileHandle handle) => new FileHeaderWriter(handle);

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        RandomAccess.Write(handle, data, offset);
        if (!Internal.UnixFile.IsSupported)
        {
            RandomAccess.FlushToDisk(handle);
            return;
        }

        // A failed flush must stop the edit: the next write's place in the crash-safe order depends on this one.
        int errno = Internal.UnixFile.Sync(handle);
        if (errno != 0)
        {
            throw new IOException(Internal.UnixErrors.Describe(errno), errno);
        }
    }
}
