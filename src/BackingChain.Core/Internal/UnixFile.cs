using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Internal;

/// <summary>
/// Opens on 64-bit Linux that never block and decide on the descriptor: <c>open</c>/<c>openat</c>/<c>openat2</c>
/// with <c>O_NONBLOCK</c>, the type from <c>statx</c> of the descriptor, the advisory lock .NET takes for writers, and
/// <c>pread</c> straight on the descriptor. <see cref="System.IO.File.OpenHandle"/> cannot open without blocking
/// (a FIFO hangs it until a writer comes), and adds an <c>fstat</c>, an <c>flock(LOCK_UN)</c> on close and an
/// <c>lseek</c> per handle that a 200-layer walk repeats.
/// </summary>
/// <remarks>
/// Only symbols glibc 2.28 exports are imported (see the test that lists them): the library must load on
/// RHEL 8, Debian 11 and Ubuntu 20.04.
/// </remarks>
internal static partial class UnixFile
{
    public const int ReadOnly = 0;             // O_RDONLY
    public const int ReadWrite = 2;            // O_RDWR
    private const int NoControllingTty = 0x100; // O_NOCTTY: opening a terminal must not make it ours
    private const int NonBlocking = 0x800;     // O_NONBLOCK: open(2) of a FIFO returns at once
    private const int CloseOnExec = 0x80000;   // O_CLOEXEC
    private const int PathOnly = 0x200000;     // O_PATH (x86-64 and aarch64)
    private const int LockExclusive = 2;       // LOCK_EX
    private const int LockNonBlocking = 4;     // LOCK_NB
    private const long SysOpenat2 = 437;       // the same number on every architecture
    private const long SysCloseRange = 436;    // the same number on every architecture (Linux 5.9)
    private const ulong ResolveNoMagicLinks = 0x02; // RESOLVE_NO_MAGICLINKS: no /proc/self/fd/N style jumps
    private const ulong ResolveBeneath = 0x08;      // RESOLVE_BENEATH: no absolute names, no '..' or symlink above the directory
    private const ulong ResolveNoSymlinks = 0x04;   // RESOLVE_NO_SYMLINKS: no symbolic link in any component
    private const nuint OpenHowSize = 3 * sizeof(ulong); // sizeof(struct open_how), the version the kernel checks

    /// <summary>.NET's own switch for its advisory locks (System.IO.DisableFileLocking), honoured the same way.</summary>
    private static readonly bool LockingDisabled = IsLockingDisabled();

    /// <summary>Set once the kernel says it has no <c>close_range</c> (before 5.9): descriptors are closed one by one.</summary>
    private static bool s_noCloseRange;

    /// <summary>Makes <see cref="CloseRange"/> behave as on a kernel without <c>close_range</c> (tests of the one-by-one path).</summary>
    internal static bool CloseRangeDisabled
    {
        get => s_noCloseRange;
        set => s_noCloseRange = value;
    }

    /// <summary>Set once the kernel says it has no <c>openat2</c> (before 5.6): confined opens verify the descriptor instead.</summary>
    private static bool s_noOpenat2;

    /// <summary>Makes confined opens behave as on a kernel without <c>openat2</c> (tests of that path; not thread-safe with other confined opens).</summary>
    internal static bool Openat2Disabled
    {
        get => s_noOpenat2;
        set => s_noOpenat2 = value;
    }

    /// <summary>Whether these opens are available (64-bit Linux).</summary>
    public static bool IsSupported => UnixFileStatus.IsSupported;

    /// <summary>O_NOFOLLOW differs between x86-64 and the generic (aarch64) flag values.</summary>
    private static int NoFollow => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 0x20000 : 0x8000;

    /// <summary>O_DIRECTORY differs between x86-64 and the generic (aarch64) flag values.</summary>
    private static int DirectoryOnly => RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 0x10000 : 0x4000;

    private static int OpenFlags(int access) => access | CloseOnExec | NonBlocking | NoControllingTty;

    /// <summary>
    /// Opens <paramref name="path"/> without blocking (a FIFO or a terminal opens at once and is then refused by
    /// its type), checks that the descriptor is a regular file or block device, and, for <paramref name="access"/>
    /// <see cref="ReadWrite"/> only, takes .NET's exclusive advisory lock (<c>flock</c>, non-blocking).
    /// </summary>
    /// <param name="path">The path, followed as <c>open(2)</c> follows it.</param>
    /// <param name="access"><see cref="ReadOnly"/> or <see cref="ReadWrite"/>.</param>
    /// <param name="handle">The descriptor when the result is <see cref="UnixOpenResult.Opened"/>.</param>
    /// <param name="status">Its status.</param>
    /// <param name="errno">Why it failed, for <see cref="UnixOpenResult.Failed"/> (see <see cref="UnixErrors.ForOpen"/>).</param>
    public static UnixOpenResult TryOpen(string path, int access, out SafeFileHandle handle, out UnixFileStatus status, out int errno)
    {
        handle = null!;
        status = default;
        errno = UnixErrors.ENOENT;
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            return UnixOpenResult.Failed;
        }

        int fd = Open(path, OpenFlags(access));
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return UnixOpenResult.Failed;
        }

        return Finish(new SafeFileHandle(fd, ownsHandle: true), access, out handle, out status, out errno);
    }

    /// <summary>
    /// Opens <paramref name="path"/> for reading as <see cref="TryOpen"/> does, but hands back the bare descriptor,
    /// which the caller must <see cref="Close"/>: for a walk that reuses one source object for layer after layer, where
    /// a <see cref="SafeFileHandle"/> per layer would be garbage (and a finalizable one at that).
    /// </summary>
    /// <param name="path">The path, followed as <c>open(2)</c> follows it.</param>
    /// <param name="directory">
    /// -1, or a descriptor of the directory <paramref name="path"/> names up to its last <c>/</c> (from
    /// <see cref="TryOpenDirectory"/>): then only the last component is looked up, from that descriptor.
    /// </param>
    /// <param name="fd">The descriptor when the result is <see cref="UnixOpenResult.Opened"/>.</param>
    /// <param name="status">Its status.</param>
    /// <param name="errno">Why it failed, for <see cref="UnixOpenResult.Failed"/>.</param>
    public static UnixOpenResult TryOpenDescriptor(string path, int directory, out int fd, out UnixFileStatus status, out int errno)
    {
        status = default;
        errno = UnixErrors.ENOENT;
        fd = -1;
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            return UnixOpenResult.Failed;
        }

        // Most opens succeed: the first call does not capture errno (see OpenWithoutErrno); a failed one is made again
        // by the import that does, so that the errno reported is the one of a call that failed.
        int opened = directory >= 0 ? OpenLastComponent(directory, path, capture: false) : OpenWithoutErrno(path, OpenFlags(ReadOnly));
        if (opened < 0 && (opened = directory >= 0 ? OpenLastComponent(directory, path, capture: true) : Open(path, OpenFlags(ReadOnly))) < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return UnixOpenResult.Failed;
        }

        if (!UnixFileStatus.TryGet(opened, out status))
        {
            errno = Marshal.GetLastPInvokeError();
            Close(opened);
            return UnixOpenResult.Failed;
        }

        if (!status.IsRegularFile && !status.IsBlockDevice)
        {
            Close(opened);
            return UnixOpenResult.NotAFileOrBlockDevice;
        }

        errno = 0;
        fd = opened;
        return UnixOpenResult.Opened;
    }

    /// <summary>Opens <paramref name="path"/> by its whole name; see the overload.</summary>
    public static UnixOpenResult TryOpenDescriptor(string path, out int fd, out UnixFileStatus status, out int errno) =>
        TryOpenDescriptor(path, -1, out fd, out status, out errno);

    /// <summary>
    /// An <c>O_PATH</c> descriptor of the directory <paramref name="path"/> names up to its last <c>/</c>, for
    /// <c>TryOpenDescriptor</c> to look up only the last component of names in it; -1 when there is none (no
    /// <c>/</c>, an empty or <c>.</c>/<c>..</c> last component, or the directory cannot be opened).
    /// </summary>
    public static int TryOpenDirectory(string path)
    {
        int slash = LastComponentStart(path) - 1;
        if (slash < 0 || path.Contains('\0', StringComparison.Ordinal))
        {
            return -1;
        }

        // "/x" lies in the root directory, whose name is "/".
        string directory = slash == 0 ? "/" : path[..slash];
        int fd = OpenWithoutErrno(directory, PathOnly | DirectoryOnly | CloseOnExec);
        return fd < 0 ? -1 : fd;
    }

    /// <summary>
    /// Where the last component of <paramref name="path"/> starts, after its last <c>/</c>; 0 when the path has no
    /// <c>/</c> or its last component is empty, <c>.</c> or <c>..</c> (those are opened by the whole path, so that
    /// every answer, errors included, is the one <c>open(2)</c> of the path gives).
    /// </summary>
    public static int LastComponentStart(string path)
    {
        int start = path.LastIndexOf('/') + 1;
        ReadOnlySpan<char> last = path.AsSpan(start);
        return last.IsEmpty || last is "." or ".." ? 0 : start;
    }

    /// <summary><c>openat(directory, last component of path)</c>, the component converted to UTF-8 on the stack (no string made).</summary>
    [SkipLocalsInit]
    private static int OpenLastComponent(int directory, string path, bool capture)
    {
        ReadOnlySpan<char> last = path.AsSpan(LastComponentStart(path));
        Span<byte> name = stackalloc byte[(3 * 255) + 1]; // NAME_MAX bytes of UTF-8 at most; longer fails with ENAMETOOLONG by path
        if (last.Length > 255 || !(System.Text.Unicode.Utf8.FromUtf16(last, name[..^1], out _, out int written, replaceInvalidSequences: false) == System.Buffers.OperationStatus.Done))
        {
            return capture ? Open(path, OpenFlags(ReadOnly)) : OpenWithoutErrno(path, OpenFlags(ReadOnly));
        }

        name[written] = 0;
        return capture
            ? OpenAtBytes(directory, ref MemoryMarshal.GetReference(name), OpenFlags(ReadOnly))
            : OpenAtBytesWithoutErrno(directory, ref MemoryMarshal.GetReference(name), OpenFlags(ReadOnly));
    }

    /// <summary><c>close(2)</c> of a descriptor from <c>TryOpenDescriptor</c>; never retried (Linux frees it even on EINTR).</summary>
    public static void Close(int fd) => _ = CloseNative(fd);

    /// <summary>
    /// <c>close_range(first, last, 0)</c>: closes every descriptor from <paramref name="first"/> to <paramref name="last"/>,
    /// which the caller must own, all of them (another thread's descriptor in the range would be closed too). Called
    /// through <c>syscall(2)</c>: glibc exports <c>close_range</c> only since 2.34. <see langword="false"/> when nothing
    /// was closed (a kernel before 5.9, remembered): the caller closes them one by one.
    /// </summary>
    public static bool CloseRange(int first, int last)
    {
        if (s_noCloseRange)
        {
            return false;
        }

        if (SyscallCloseRange(SysCloseRange, (uint)first, (uint)last, 0) == 0)
        {
            return true;
        }

        // Without CLOSE_RANGE_UNSHARE the call fails only before it closes anything (ENOSYS, EINVAL, or a seccomp
        // filter's EPERM): every failure means "close them yourself", and the next walks need not ask again.
        s_noCloseRange = true;
        return false;
    }

    /// <summary>Checks the type of a fresh descriptor and, for a writer, takes .NET's advisory lock; disposes it unless opened.</summary>
    public static UnixOpenResult Finish(SafeFileHandle opened, int access, out SafeFileHandle handle, out UnixFileStatus status, out int errno)
    {
        handle = null!;
        errno = 0;
        if (!UnixFileStatus.TryGet(opened, out status))
        {
            errno = Marshal.GetLastPInvokeError();
            opened.Dispose();
            return UnixOpenResult.Failed;
        }

        if (!status.IsRegularFile && !status.IsBlockDevice)
        {
            opened.Dispose();
            return UnixOpenResult.NotAFileOrBlockDevice;
        }

        // Only a writer takes .NET's advisory lock (flock exclusive, as FileShare.None does), so that two .NET
        // processes never edit one header at once. A reader takes none: a shared flock would only coordinate with
        // other .NET processes (qemu never takes flock; its image locks are fcntl open-file-description locks,
        // and `qemu-img info -U` takes none), yet it would cost one more system call for every layer of a walk.
        if (access == ReadWrite && !LockingDisabled && FLock((int)opened.DangerousGetHandle(), LockExclusive | LockNonBlocking) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            opened.Dispose();
            return UnixOpenResult.Failed;
        }

        handle = opened;
        return UnixOpenResult.Opened;
    }

    /// <summary>An <c>O_PATH</c> descriptor of a directory, to resolve names beneath it; a negative errno on failure.</summary>
    public static SafeFileHandle? OpenDirectoryPath(string path, out int errno)
    {
        errno = 0;
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            errno = UnixErrors.ENOENT;
            return null;
        }

        int fd = Open(path, PathOnly | DirectoryOnly | CloseOnExec);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// <c>openat2(directory, relative, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)</c> without blocking: the kernel
    /// refuses (<c>EXDEV</c>) any resolution, by <c>..</c> or by a symlink met on the way, that leaves the directory.
    /// Returns the descriptor or -1 with <paramref name="errno"/>; <see cref="UnixErrors.ENOSYS"/> when the kernel
    /// lacks the call (remembered, so later calls fail at once).
    /// </summary>
    public static int OpenBeneath(SafeFileHandle directory, string relative, int access, out int errno) =>
        OpenBeneath(directory, relative, OpenFlags(access), ResolveBeneath | ResolveNoMagicLinks, out errno);

    /// <summary>
    /// <c>openat2(directory, relative, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)</c> for reading,
    /// without blocking and with <c>O_NOFOLLOW</c> (and <c>O_DIRECTORY</c> when <paramref name="directoryOnly"/>): a
    /// symbolic link in any component, the last included, fails the open with <c>ELOOP</c> and is never followed.
    /// -1 with <paramref name="errno"/> on failure; <see cref="UnixErrors.ENOSYS"/> when the kernel lacks the call.
    /// </summary>
    public static int OpenBeneathWithoutLinks(SafeFileHandle directory, string relative, bool directoryOnly, out int errno) =>
        OpenBeneath(directory, relative, OpenFlags(ReadOnly) | NoFollow | (directoryOnly ? DirectoryOnly : 0), ResolveBeneath | ResolveNoSymlinks | ResolveNoMagicLinks, out errno);

    /// <summary>
    /// <c>open(path, O_NOFOLLOW)</c> for reading without blocking (and <c>O_DIRECTORY</c> when
    /// <paramref name="directoryOnly"/>): a symbolic link as the last component fails with <c>ELOOP</c>; links in
    /// earlier components are followed, so the caller compares the descriptor's identity with what it expected.
    /// </summary>
    public static int OpenWithoutFollowing(string path, bool directoryOnly, out int errno)
    {
        errno = UnixErrors.ENOENT;
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            return -1;
        }

        int fd = Open(path, OpenFlags(ReadOnly) | NoFollow | (directoryOnly ? DirectoryOnly : 0));
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd;
    }

    private static int OpenBeneath(SafeFileHandle directory, string relative, int flags, ulong resolve, out int errno)
    {
        errno = UnixErrors.ENOSYS;
        if (s_noOpenat2)
        {
            return -1;
        }

        var how = new OpenHow { Flags = (ulong)flags, Mode = 0, Resolve = resolve };
        bool added = false;
        try
        {
            directory.DangerousAddRef(ref added);
            for (int attempt = 0; ; attempt++)
            {
                long fd = SyscallOpenat2(SysOpenat2, directory.DangerousGetHandle(), relative, ref how, OpenHowSize);
                if (fd >= 0)
                {
                    errno = 0;
                    return (int)fd;
                }

                errno = Marshal.GetLastPInvokeError();

                // EAGAIN: a rename or mount raced with the confined lookup; the kernel asks to retry.
                if (errno != UnixErrors.EAGAIN || attempt >= 16)
                {
                    break;
                }
            }
        }
        finally
        {
            if (added)
            {
                directory.DangerousRelease();
            }
        }

        if (errno == UnixErrors.ENOSYS)
        {
            s_noOpenat2 = true;
        }

        return -1;
    }

    /// <summary><c>openat(directory, relative)</c> without blocking, following symlinks anywhere (the caller verifies the result).</summary>
    public static int OpenAt(SafeFileHandle directory, string relative, int access, out int errno)
    {
        errno = 0;
        bool added = false;
        try
        {
            directory.DangerousAddRef(ref added);
            int fd = OpenAtNative((int)directory.DangerousGetHandle(), relative, OpenFlags(access));
            if (fd < 0)
            {
                errno = Marshal.GetLastPInvokeError();
            }

            return fd;
        }
        finally
        {
            if (added)
            {
                directory.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// The path the kernel has for what <paramref name="handle"/> is open on (<c>readlink /proc/self/fd/N</c>):
    /// every symlink resolved, as of the open. <see langword="null"/> when /proc is not mounted.
    /// </summary>
    public static string? DescriptorPath(SafeFileHandle handle)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return DescriptorPath((int)handle.DangerousGetHandle());
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>The path the kernel has for what the bare descriptor <paramref name="fd"/> is open on; see the overload.</summary>
    public static string? DescriptorPath(int fd)
    {
        string link = "/proc/self/fd/" + fd.ToString(System.Globalization.CultureInfo.InvariantCulture);
        byte[] buffer = new byte[4096]; // PATH_MAX
        long length = ReadLink(link, ref buffer[0], (nuint)buffer.Length);
        if (length <= 0 || length >= buffer.Length)
        {
            return null;
        }

        return Encoding.UTF8.GetString(buffer, 0, (int)length);
    }

    /// <summary>
    /// One <c>pread</c> on a bare descriptor, retried on EINTR; -1 on failure, with the errno left for the caller. A
    /// failed call is made again by the import that captures errno, so that the errno is the one of a call that failed.
    /// </summary>
    /// <remarks>
    /// Not inlined: on 64-bit targets the JIT inlines a P/Invoke frame only outside try regions, and the walk's reads
    /// sit inside one; a call from here keeps the cheap inlined transition.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int Read(int fd, Span<byte> buffer, long offset)
    {
        int read = (int)PReadWithoutErrno(fd, ref MemoryMarshal.GetReference(buffer), (nuint)buffer.Length, offset);
        if (read >= 0)
        {
            return read;
        }

        while (true)
        {
            read = (int)PRead(fd, ref MemoryMarshal.GetReference(buffer), (nuint)buffer.Length, offset);
            if (read >= 0 || Marshal.GetLastPInvokeError() != UnixErrors.EINTR)
            {
                return read;
            }
        }
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

    /// <summary>
    /// <c>fsync(2)</c>, retried on EINTR; the errno on failure, else 0. The runtime's own flush
    /// (<see cref="System.IO.RandomAccess.FlushToDisk"/>) was seen returning normally when the kernel failed the call
    /// with EIO (strace fault injection), which would let a header edit go on past a write that never reached the disk.
    /// </summary>
    public static int Sync(SafeFileHandle handle)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            while (true)
            {
                if (FSync((int)handle.DangerousGetHandle()) == 0)
                {
                    return 0;
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno != UnixErrors.EINTR)
                {
                    return errno;
                }
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary><c>fcntl(fd, command, &amp;flock)</c> for the open-file-description byte-range locks qemu uses; errno on failure, else 0.</summary>
    public static int ByteRangeLock(SafeFileHandle handle, int command, ref FileLock description)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return FcntlLock((int)handle.DangerousGetHandle(), command, ref description) == 0 ? 0 : Marshal.GetLastPInvokeError();
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

    /// <summary><c>struct open_how</c> of openat2(2).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    // The same symbols without SetLastError, for the calls every layer of a walk makes: capturing errno costs a
    // thread-local store around every call (measured: the walk's P/Invoke layer 1.18 -> 1.11 x the C loop's calls).
    // Used only where a failure is made again through the capturing import.
    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenWithoutErrno(string path, int flags);

    [LibraryImport("libc", EntryPoint = "pread")]
    private static partial nint PReadWithoutErrno(int fd, ref byte buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAtNative(int directory, string path, int flags);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true)]
    private static partial int OpenAtBytes(int directory, ref byte name, int flags);

    [LibraryImport("libc", EntryPoint = "openat")]
    private static partial int OpenAtBytesWithoutErrno(int directory, ref byte name, int flags);

    // syscall(2) is variadic and reads every argument as a long: pass longs and pointers only.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long SyscallOpenat2(long number, nint directory, string path, ref OpenHow how, nuint size);

    [LibraryImport("libc", EntryPoint = "syscall")]
    private static partial long SyscallCloseRange(long number, long first, long last, long flags);

    [LibraryImport("libc", EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint ReadLink(string path, ref byte buffer, nuint size);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int FLock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int CloseNative(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static partial nint PRead(int fd, ref byte buffer, nuint count, long offset);

    // fcntl is variadic too; its third argument here is a pointer, passed in a register like any other.
    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int FcntlLock(int fd, int command, ref FileLock description);
}

/// <summary><c>struct flock</c> on 64-bit Linux (x86-64 and aarch64 share it): 32 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FileLock
{
    public short Type;
    public short Whence;
    public long Start;
    public long Length;
    public int Pid;
    private readonly int _padding;
}

/// <summary>What <see cref="UnixFile.TryOpen"/> did.</summary>
internal enum UnixOpenResult
{
    /// <summary>Opened and stated (and locked, for a writer).</summary>
    Opened,

    /// <summary>The path names a FIFO, socket, directory or character device: refused, nothing left open.</summary>
    NotAFileOrBlockDevice,

    /// <summary>Something failed with an errno; nothing is left open.</summary>
    Failed,
}
