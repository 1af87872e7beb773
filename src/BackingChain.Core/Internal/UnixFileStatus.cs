using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Internal;

/// <summary>
/// The few <c>stat</c> fields .NET does not expose: device and inode (file identity for loop detection),
/// file type, and allocated blocks (qemu's <c>actual-size</c> is <c>st_blocks * 512</c>).
/// </summary>
/// <remarks>
/// <para>glibc exports <c>fstat</c> and <c>stat</c> as symbols only since 2.33 (before, they were inline wrappers
/// around <c>__fxstat</c>), so importing them breaks RHEL 8, Debian 11 and Ubuntu 20.04 with an
/// EntryPointNotFoundException. <c>statx</c> is exported since glibc 2.28 and emulated there on kernels older than
/// 4.11. Where even that symbol is missing, the same system call is made through <c>syscall(2)</c>, and where the
/// kernel lacks it, through the <c>newfstatat</c> system call every 64-bit kernel has. Every layer decodes a byte
/// buffer at fixed offsets, so no unsafe struct layout is needed.</para>
/// <para>Only 64-bit Linux (x86-64, aarch64) is supported; elsewhere it reports nothing and callers fall back.</para>
/// </remarks>
internal readonly partial struct UnixFileStatus
{
    private const int BufferSize = 256;        // sizeof(struct statx) and more than sizeof(struct stat)
    private const uint FileTypeMask = 0xF000;  // S_IFMT
    private const uint RegularFile = 0x8000;   // S_IFREG
    private const uint BlockDevice = 0x6000;   // S_IFBLK
    private const uint DirectoryType = 0x4000; // S_IFDIR
    private const uint SymbolicLink = 0xA000;  // S_IFLNK
    private const int SymlinkNoFollow = 0x100; // AT_SYMLINK_NOFOLLOW
    private const int CurrentDirectory = -100; // AT_FDCWD
    private const int EmptyPath = 0x1000;      // AT_EMPTY_PATH: stat the descriptor itself
    private const uint BasicStats = 0x7FF;     // STATX_BASIC_STATS

    /// <summary>Set once glibc turns out not to export <c>statx</c> (older than 2.28): the system call is made directly.</summary>
    private static bool s_noStatxSymbol;

    /// <summary>Set once the kernel turns out not to have <c>statx</c> (older than 4.11): <c>newfstatat</c> is used.</summary>
    private static bool s_noStatxSyscall;

    public ulong Device { get; init; }

    public ulong Inode { get; init; }

    public uint Mode { get; init; }

    public long Size { get; init; }

    public long Blocks { get; init; }

    /// <summary>
    /// The inode's change time (<c>st_ctime</c>) in nanoseconds since the epoch: any write, truncation, rename or
    /// permission change moves it, so a header remembered together with it is known to be the file's current one.
    /// </summary>
    public long ChangeTime { get; init; }

    public bool IsRegularFile => (Mode & FileTypeMask) == RegularFile;

    public bool IsBlockDevice => (Mode & FileTypeMask) == BlockDevice;

    public bool IsDirectory => (Mode & FileTypeMask) == DirectoryType;

    public bool IsSymbolicLink => (Mode & FileTypeMask) == SymbolicLink;

    public static bool IsSupported { get; } = OperatingSystem.IsLinux()
        && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    private static bool IsX64 => RuntimeInformation.ProcessArchitecture == Architecture.X64;

    public static bool TryGet(SafeFileHandle handle, out UnixFileStatus status)
    {
        status = default;
        if (!IsSupported)
        {
            return false;
        }

        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return TryGet((int)handle.DangerousGetHandle(), out status);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>The status of an open descriptor (what was opened, not what a name means now).</summary>
    public static bool TryGet(int fd, out UnixFileStatus status) => TryGet(fd, string.Empty, EmptyPath, out status);

    /// <summary>The status of what <paramref name="path"/> names now (symlinks followed). Racy by nature: decide on descriptors where it matters.</summary>
    public static bool TryGet(string path, out UnixFileStatus status)
    {
        status = default;
        return path.Length > 0 && !path.Contains('\0', StringComparison.Ordinal) && TryGet(CurrentDirectory, path, 0, out status);
    }

    /// <summary>
    /// The status of the entry <paramref name="name"/> of the open directory <paramref name="directory"/>, the entry
    /// itself (a symbolic link is not followed). <paramref name="errno"/> says why it failed.
    /// </summary>
    public static bool TryGetEntry(int directory, string name, out UnixFileStatus status, out int errno)
    {
        status = default;
        errno = UnixErrors.ENOENT;
        if (name.Length == 0 || name.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        bool found = TryGet(directory, name, SymlinkNoFollow, out status);
        errno = found ? 0 : Marshal.GetLastPInvokeError();
        return found;
    }

    // Not zeroed first: statx fills the whole struct when it succeeds (nothing is decoded otherwise), and the
    // newfstatat fallback clears the buffer itself.
    [SkipLocalsInit]
    private static bool TryGet(int directory, string path, int flags, out UnixFileStatus status)
    {
        status = default;
        if (!IsSupported)
        {
            return false;
        }

        Span<byte> buffer = stackalloc byte[BufferSize];
        if (!s_noStatxSyscall)
        {
            int result = Statx(directory, path, flags, buffer, out int errno);
            if (result == 0)
            {
                status = DecodeStatx(buffer);
                return true;
            }

            if (errno != UnixErrors.ENOSYS)
            {
                return false;
            }

            s_noStatxSyscall = true;
        }

        buffer.Clear();
        long number = IsX64 ? 262 : 79; // SYS_newfstatat
        if (SyscallFStatAt(number, directory, path, ref MemoryMarshal.GetReference(buffer), flags) != 0)
        {
            return false;
        }

        status = DecodeStat(buffer);
        return true;
    }

    private static int Statx(int directory, string path, int flags, Span<byte> buffer, out int errno)
    {
        errno = 0;
        int result;
        bool ofDescriptor = path.Length == 0;
        if (!s_noStatxSymbol)
        {
            try
            {
                // A descriptor's status (every layer of a walk) passes the constant empty C string rather than having
                // "" converted to UTF-8 on each call, and is asked first without capturing errno: a failed call is
                // made again below by the import that does.
                if (ofDescriptor && StatxOfDescriptor(directory, flags, buffer) == 0)
                {
                    return 0;
                }

                result = ofDescriptor
                    ? GlibcStatxDescriptor(directory, ref MemoryMarshal.GetReference(EmptyCString), flags, BasicStats, ref MemoryMarshal.GetReference(buffer))
                    : GlibcStatx(directory, path, flags, BasicStats, ref MemoryMarshal.GetReference(buffer));
                errno = result == 0 ? 0 : Marshal.GetLastPInvokeError();
                return result;
            }
            catch (EntryPointNotFoundException)
            {
                s_noStatxSymbol = true;
            }
        }

        long number = IsX64 ? 332 : 291; // SYS_statx
        result = (int)SyscallStatx(number, directory, path, flags, BasicStats, ref MemoryMarshal.GetReference(buffer));
        errno = result == 0 ? 0 : Marshal.GetLastPInvokeError();
        return result;
    }

    /// <summary>
    /// <c>statx(fd, "", AT_EMPTY_PATH)</c> without capturing errno. Not inlined into <see cref="Statx"/>: on 64-bit
    /// targets the JIT inlines a P/Invoke frame only outside try regions.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int StatxOfDescriptor(int fd, int flags, Span<byte> buffer) =>
        GlibcStatxDescriptorWithoutErrno(fd, ref MemoryMarshal.GetReference(EmptyCString), flags, BasicStats, ref MemoryMarshal.GetReference(buffer));

    /// <summary>The empty C string (one NUL byte, in the assembly's constant data) that <c>AT_EMPTY_PATH</c> asks for.</summary>
    private static ReadOnlySpan<byte> EmptyCString => [0];

    private static UnixFileStatus DecodeStatx(ReadOnlySpan<byte> b)
    {
        // struct statx: mode@28(u16) ino@32 size@40 blocks@48 ctime@96(sec i64, nsec u32) ... dev_major@136 dev_minor@140 (same on every architecture).
        uint major = BinaryPrimitives.ReadUInt32LittleEndian(b[136..]);
        uint minor = BinaryPrimitives.ReadUInt32LittleEndian(b[140..]);
        return new UnixFileStatus
        {
            Device = MakeDevice(major, minor),
            Inode = BinaryPrimitives.ReadUInt64LittleEndian(b[32..]),
            Mode = BinaryPrimitives.ReadUInt16LittleEndian(b[28..]),
            Size = BinaryPrimitives.ReadInt64LittleEndian(b[40..]),
            Blocks = BinaryPrimitives.ReadInt64LittleEndian(b[48..]),
            ChangeTime = Nanoseconds(BinaryPrimitives.ReadInt64LittleEndian(b[96..]), BinaryPrimitives.ReadUInt32LittleEndian(b[104..])),
        };
    }

    private static UnixFileStatus DecodeStat(ReadOnlySpan<byte> b)
    {
        // The kernel's struct stat, which glibc uses as is on both ABIs.
        // x86-64: dev@0 ino@8 nlink@16 mode@24(u32) ... size@48 blksize@56 blocks@64
        // aarch64 (generic): dev@0 ino@8 mode@16(u32) nlink@20 ... size@48 blksize@56(i32) blocks@64
        // both: atime@72 mtime@88 ctime@104, each seconds then nanoseconds (64 bits each)
        return new UnixFileStatus
        {
            Device = BinaryPrimitives.ReadUInt64LittleEndian(b),
            Inode = BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
            Mode = BinaryPrimitives.ReadUInt32LittleEndian(b[(IsX64 ? 24 : 16)..]),
            Size = BinaryPrimitives.ReadInt64LittleEndian(b[48..]),
            Blocks = BinaryPrimitives.ReadInt64LittleEndian(b[64..]),
            ChangeTime = Nanoseconds(BinaryPrimitives.ReadInt64LittleEndian(b[104..]), (uint)BinaryPrimitives.ReadUInt64LittleEndian(b[112..])),
        };
    }

    private static long Nanoseconds(long seconds, uint nanoseconds) => unchecked((seconds * 1_000_000_000) + nanoseconds);

    /// <summary>glibc's <c>makedev</c> encoding, so the device number equals <c>st_dev</c> from <c>stat(2)</c>.</summary>
    private static ulong MakeDevice(uint major, uint minor) =>
        ((ulong)(major & 0xFFFFF000) << 32) | ((ulong)(major & 0xFFF) << 8) | ((ulong)(minor & 0xFFFFFF00) << 12) | (minor & 0xFF);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int GlibcStatx(int directory, string path, int flags, uint mask, ref byte buffer);

    // The same symbol with the path as a C string already made: the kernel only reads it.
    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static partial int GlibcStatxDescriptor(int directory, ref byte path, int flags, uint mask, ref byte buffer);

    // The same symbol again, without SetLastError (a thread-local store around every call); see StatxOfDescriptor.
    [LibraryImport("libc", EntryPoint = "statx")]
    private static partial int GlibcStatxDescriptorWithoutErrno(int directory, ref byte path, int flags, uint mask, ref byte buffer);

    // syscall(2) is variadic and reads every argument as a long: pass longs, so no upper half is left undefined.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long SyscallStatx(long number, long directory, string path, long flags, long mask, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long SyscallFStatAt(long number, long directory, string path, ref byte buffer, long flags);
}
