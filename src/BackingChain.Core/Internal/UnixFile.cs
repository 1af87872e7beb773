using System;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Internal;

/// <summary>
/// A lean open for <see cref="Sources.FileImageSource"/> on 64-bit Linux: <c>open</c>, <c>fstat</c> and the shared
/// advisory lock .NET takes, and <c>pread</c> straight on the descriptor. <see cref="System.IO.File.OpenHandle"/>
/// adds an <c>fstat</c> of its own, and its handles add an <c>flock(LOCK_UN)</c> on close and an <c>lseek</c> on
/// the first <see cref="System.IO.RandomAccess"/> read: three system calls per layer that a walk repeats 200 times.
/// </summary>
/// <remarks>
/// Whenever a call fails, callers go back to the .NET path, which then fails (or succeeds) exactly as before,
/// with the same exception and message.
/// </remarks>
internal static partial class UnixFile
{
    private const int ReadOnly = 0;            // O_RDONLY
    private const int CloseOnExec = 0x80000;   // O_CLOEXEC (x86-64 and aarch64)
    private const int NonBlocking = 0x800;     // O_NONBLOCK (x86-64 and aarch64): open(2) of a FIFO returns at once
    private const int LockShared = 1;          // LOCK_SH
    private const int LockNonBlocking = 4;     // LOCK_NB

    /// <summary>.NET's own switch for its advisory locks (System.IO.DisableFileLocking), honoured the same way.</summary>
    private static readonly bool LockingDisabled = IsLockingDisabled();

    /// <summary>
    /// Opens <paramref name="path"/> read-only as .NET would (close-on-exec, <c>flock(LOCK_SH | LOCK_NB)</c>) and
    /// stats it. <c>O_NONBLOCK</c> makes the open of a FIFO return at once, so the type is checked on the open
    /// descriptor instead of by a separate <c>stat</c> of the path before it (one path lookup fewer per layer, and
    /// no window between the check and the open). Nothing is left open unless the result is
    /// <see cref="UnixOpenResult.Opened"/>; on <see cref="UnixOpenResult.Failed"/> callers take the .NET path, which
    /// then fails (or succeeds) exactly as before.
    /// </summary>
    public static UnixOpenResult TryOpenForReading(string path, out SafeFileHandle handle, out UnixFileStatus status)
    {
        handle = null!;
        status = default;
        if (!UnixFileStatus.IsSupported || path.Contains('\0', StringComparison.Ordinal))
        {
            return UnixOpenResult.Failed;
        }

        int fd = Open(path, ReadOnly | CloseOnExec | NonBlocking);
        if (fd < 0)
        {
            return UnixOpenResult.Failed;
        }

        var opened = new SafeFileHandle(fd, ownsHandle: true);
        if (!UnixFileStatus.TryGet(opened, out status))
        {
            opened.Dispose();
            return UnixOpenResult.Failed;
        }

        if (!status.IsRegularFile && !status.IsBlockDevice)
        {
            opened.Dispose();
            return UnixOpenResult.NotAFileOrBlockDevice;
        }

        if (!LockingDisabled && FLock(fd, LockShared | LockNonBlocking) != 0)
        {
            opened.Dispose();
            return UnixOpenResult.Failed;
        }

        handle = opened;
        return UnixOpenResult.Opened;
    }

    /// <summary>One <c>pread</c>; -1 on failure (the caller retries through <see cref="System.IO.RandomAccess"/>).</summary>
    public static int Read(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return (int)PRead((int)handle.DangerousGetHandle(), ref MemoryMarshal.GetReference(buffer), (nuint)buffer.Length, offset);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private static bool IsLockingDisabled()
    {
        if (AppContext.TryGetSwitch("System.IO.DisableFileLocking", out bool disabled))
        {
            return disabled;
        }

        string? variable = Environment.GetEnvironmentVariable("DOTNET_SYSTEM_IO_DISABLEFILELOCKING");
        return variable is not null && (variable == "1" || variable.Equals("true", StringComparison.OrdinalIgnoreCase));
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "flock")]
    private static partial int FLock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "pread")]
    private static partial nint PRead(int fd, ref byte buffer, nuint count, long offset);
}

/// <summary>What <see cref="UnixFile.TryOpenForReading"/> did.</summary>
internal enum UnixOpenResult
{
    /// <summary>Opened, stated and locked.</summary>
    Opened,

    /// <summary>The path names a FIFO, socket, directory or character device: refused, nothing left open.</summary>
    NotAFileOrBlockDevice,

    /// <summary>Something failed; take the .NET path for its exact exception.</summary>
    Failed,
}
