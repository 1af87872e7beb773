using System;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Internal;

/// <summary>
/// The few <c>stat</c> fields .NET does not expose: device and inode (file identity for loop detection),
/// file type, and allocated blocks (qemu's <c>actual-size</c> is <c>st_blocks * 512</c>).
/// </summary>
/// <remarks>
/// Reads glibc's <c>struct stat</c> through a byte buffer with the offsets of the two 64-bit Linux ABIs,
/// so no unsafe struct layout is needed. Elsewhere it reports nothing and callers fall back.
/// </remarks>
internal readonly partial struct UnixFileStatus
{
    private const int StatBufferSize = 256;
    private const uint FileTypeMask = 0xF000; // S_IFMT
    private const uint RegularFile = 0x8000;  // S_IFREG
    private const uint BlockDevice = 0x6000;  // S_IFBLK

    public ulong Device { get; init; }

    public ulong Inode { get; init; }

    public uint Mode { get; init; }

    public long Size { get; init; }

    public long Blocks { get; init; }

    public bool IsRegularFile => (Mode & FileTypeMask) == RegularFile;

    public bool IsBlockDevice => (Mode & FileTypeMask) == BlockDevice;

    public static bool IsSupported { get; } = OperatingSystem.IsLinux()
        && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

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
            Span<byte> buffer = stackalloc byte[StatBufferSize];
            if (FStat((int)handle.DangerousGetHandle(), ref MemoryMarshal.GetReference(buffer)) != 0)
            {
                return false;
            }

            status = Decode(buffer);
            return true;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    public static bool TryGet(string path, out UnixFileStatus status)
    {
        status = default;
        if (!IsSupported)
        {
            return false;
        }

        Span<byte> buffer = stackalloc byte[StatBufferSize];
        if (Stat(path, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            return false;
        }

        status = Decode(buffer);
        return true;
    }

    private static UnixFileStatus Decode(ReadOnlySpan<byte> b)
    {
        // x86-64: dev@0 ino@8 nlink@16 mode@24(u32) ... size@48 blksize@56 blocks@64
        // aarch64 (generic): dev@0 ino@8 mode@16(u32) nlink@20 ... size@48 blksize@56(i32) blocks@64
        bool x64 = RuntimeInformation.ProcessArchitecture == Architecture.X64;
        return new UnixFileStatus
        {
            Device = BinaryPrimitives.ReadUInt64LittleEndian(b),
            Inode = BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
            Mode = BinaryPrimitives.ReadUInt32LittleEndian(b[(x64 ? 24 : 16)..]),
            Size = BinaryPrimitives.ReadInt64LittleEndian(b[48..]),
            Blocks = BinaryPrimitives.ReadInt64LittleEndian(b[64..]),
        };
    }

    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int FStat(int fd, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Stat(string path, ref byte buffer);
}
