using System.IO;
using BackingChain.Internal;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Editing;

/// <summary>
/// The image locks qemu's file driver (block/file-posix.c, <c>raw_apply_lock_bytes</c> and
/// <c>raw_check_lock_bytes</c>) takes, taken the same way so that qemu and we see each other.
/// </summary>
/// <remarks>
/// <para>qemu expresses what a user of an image does as permission bits: bit 0 consistent read, bit 1 write,
/// bit 2 write that leaves the guest-visible data unchanged, bit 3 resize. For every bit it holds, it takes a
/// shared open-file-description (OFD) lock on the single byte at offset 100 + bit; for every bit it does
/// <em>not</em> let others have, it takes a shared lock on the byte at 200 + bit. A newcomer then asks the
/// kernel (<c>F_OFD_GETLK</c> for an exclusive lock) whether anyone else holds byte 200 + bit for each bit it
/// wants, and byte 100 + bit for each bit it refuses to share. Shared locks never conflict with each other, so
/// only that test finds conflicts; locks of our own descriptor never conflict with it.</para>
/// <para>An in-place rebase holds exactly what <c>qemu-img rebase -u</c> holds on the file (seen with strace on
/// qemu 7.2): consistent read, write and resize (bytes 100, 101, 103), and does not share write or resize
/// (bytes 201, 203). So a running qemu writing the image (it holds 101 and 201) or reading it as a backing
/// file (it holds 201) makes the rebase refuse, and while the rebase runs, qemu cannot open the image to write.
/// The locks go with the descriptor: closing it releases them.</para>
/// </remarks>
internal static class QemuImageLocks
{
    private const int GetLock = 36;   // F_OFD_GETLK
    private const int SetLock = 37;   // F_OFD_SETLK (non-blocking)
    private const short ReadLock = 0;  // F_RDLCK
    private const short WriteLock = 1; // F_WRLCK
    private const short Unlocked = 2;  // F_UNLCK
    private const int PermissionBase = 100;
    private const int NotSharedBase = 200;

    /// <summary>qemu's permission bits, in its names (used in its messages).</summary>
    private static readonly string[] Names = ["consistent read", "write", "write unchanged", "resize"];

    private const int ConsistentRead = 0;
    private const int Write = 1;
    private const int Resize = 3;

    /// <summary>What a header rewrite holds: what <c>qemu-img rebase -u</c> holds.</summary>
    private static readonly int[] Held = [ConsistentRead, Write, Resize];

    /// <summary>What it does not let others have.</summary>
    private static readonly int[] NotShared = [Write, Resize];

    /// <summary>
    /// Takes the locks on <paramref name="handle"/> and checks nobody else's conflict with them, as qemu does
    /// when it opens an image to write. They stay until the handle is closed.
    /// </summary>
    /// <exception cref="BackingEditException">Another process holds a conflicting lock (<see cref="BackingEditError.ImageInUse"/>).</exception>
    /// <exception cref="IOException">The file system refuses byte-range locks.</exception>
    public static void Acquire(SafeFileHandle handle, string path)
    {
        if (!UnixFileStatus.IsSupported)
        {
            return; // qemu's locks are a Linux (OFD) protocol here.
        }

        foreach (int bit in Held)
        {
            Lock(handle, PermissionBase + bit);
        }

        foreach (int bit in NotShared)
        {
            Lock(handle, NotSharedBase + bit);
        }

        // Someone refusing to share what we want: byte 200 + bit held by another.
        foreach (int bit in Held)
        {
            if (HeldByOthers(handle, NotSharedBase + bit))
            {
                throw InUse($"Failed to get \"{Names[bit]}\" lock", path);
            }
        }

        // Someone holding what we refuse to share: byte 100 + bit held by another.
        foreach (int bit in NotShared)
        {
            if (HeldByOthers(handle, PermissionBase + bit))
            {
                throw InUse($"Failed to get shared \"{Names[bit]}\" lock", path);
            }
        }
    }

    private static void Lock(SafeFileHandle handle, int offset)
    {
        var description = new FileLock { Type = ReadLock, Whence = 0, Start = offset, Length = 1 };
        int errno = UnixFile.ByteRangeLock(handle, SetLock, ref description);
        if (errno == UnixErrors.EAGAIN || errno == UnixErrors.EACCES)
        {
            // Only an exclusive lock conflicts with a shared one, and qemu never takes one; treat it as in use.
            throw InUse($"Failed to lock byte {offset}", string.Empty);
        }

        if (errno != 0)
        {
            throw new IOException($"Failed to lock byte {offset}: {UnixErrors.Describe(errno)}", errno);
        }
    }

    private static bool HeldByOthers(SafeFileHandle handle, int offset)
    {
        var description = new FileLock { Type = WriteLock, Whence = 0, Start = offset, Length = 1 };
        int errno = UnixFile.ByteRangeLock(handle, GetLock, ref description);
        if (errno != 0)
        {
            throw new IOException($"Failed to get lock byte {offset}: {UnixErrors.Describe(errno)}", errno);
        }

        return description.Type != Unlocked;
    }

    private static BackingEditException InUse(string what, string path) =>
        new(BackingEditError.ImageInUse, path.Length == 0 ? what : $"{what}. Is another process using the image [{path}]?");
}
