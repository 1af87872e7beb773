using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace BackingChain.Internal;

/// <summary>
/// Lists a directory from an open descriptor (<c>fdopendir</c>, <c>readdir64</c>, <c>closedir</c>), so a store is
/// walked one directory descriptor at a time: no path is ever longer than the one the caller asks for, and a
/// directory is listed as what was opened, not as what its name means a moment later.
/// </summary>
internal static partial class UnixDirectory
{
    // struct dirent64 on 64-bit Linux: d_ino u64 @0, d_off i64 @8, d_reclen u16 @16, d_type u8 @18, d_name @19.
    private const int NameOffset = 19;
    private const int NameMax = 255;
    private const int DupFdCloseOnExec = 1030; // F_DUPFD_CLOEXEC

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Reads the names in the directory open as <paramref name="fd"/> (<c>.</c> and <c>..</c> left out), through a
    /// duplicate of it: the caller keeps <paramref name="fd"/> open, to look at the entries from it.
    /// </summary>
    /// <param name="fd">A descriptor of a directory opened for reading, at its first entry.</param>
    /// <param name="names">The names that are valid UTF-8, in the order the file system gives them.</param>
    /// <param name="undecodable">How many names are not valid UTF-8 (they cannot be named as strings, so are not listed).</param>
    /// <returns>0, or the errno of a failed listing (the names read before it are kept).</returns>
    public static int ReadNames(int fd, List<string> names, out int undecodable)
    {
        undecodable = 0;
        int duplicate = DuplicateCloseOnExec(fd, DupFdCloseOnExec, 0);
        if (duplicate < 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        // fdopendir takes the duplicate; closedir closes it.
        nint stream = FdOpenDir(duplicate);
        if (stream == 0)
        {
            int failed = Marshal.GetLastPInvokeError();
            UnixFile.Close(duplicate);
            return failed;
        }

        try
        {
            Span<byte> name = stackalloc byte[NameMax + 1];
            while (true)
            {
                nint entry = ReadDir(stream);
                if (entry == 0)
                {
                    // NULL is the end, or a failure when errno is set (the import cleared it before the call).
                    return Marshal.GetLastPInvokeError();
                }

                int length = 0;
                while (length < name.Length && (name[length] = Marshal.ReadByte(entry, NameOffset + length)) != 0)
                {
                    length++;
                }

                ReadOnlySpan<byte> bytes = name[..length];
                if (bytes.IsEmpty || bytes.SequenceEqual("."u8) || bytes.SequenceEqual(".."u8))
                {
                    continue;
                }

                try
                {
                    names.Add(StrictUtf8.GetString(bytes));
                }
                catch (DecoderFallbackException)
                {
                    undecodable++;
                }
            }
        }
        finally
        {
            _ = CloseDir(stream);
        }
    }

    // fcntl is variadic; its third argument here is an int, passed in a register like any other.
    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int DuplicateCloseOnExec(int fd, int command, int lowest);

    [LibraryImport("libc", EntryPoint = "fdopendir", SetLastError = true)]
    private static partial nint FdOpenDir(int fd);

    [LibraryImport("libc", EntryPoint = "readdir64", SetLastError = true)]
    private static partial nint ReadDir(nint stream);

    [LibraryImport("libc", EntryPoint = "closedir")]
    private static partial int CloseDir(nint stream);
}
