using System;
using System.IO;
using System.Runtime.InteropServices;

namespace BackingChain.Internal;

/// <summary>
/// Linux errno values (the same on x86-64 and aarch64) and the exceptions <see cref="File.OpenHandle"/> throws for
/// them, so that opening through <see cref="UnixFile"/> fails exactly as the .NET path failed before.
/// </summary>
/// <remarks>
/// The .NET path cannot open without blocking, so it can no longer be used just to obtain its exception: a FIFO
/// swapped in after our failed open would hang it. The wording is .NET's (English) wording, by intent.
/// </remarks>
internal static class UnixErrors
{
    public const int EPERM = 1;
    public const int EINTR = 4;
    public const int ENOENT = 2;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int EAGAIN = 11; // also EWOULDBLOCK
    public const int EACCES = 13;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int ENAMETOOLONG = 36;
    public const int ENOSYS = 38;
    public const int ELOOP = 40;

    /// <summary>The exception <see cref="File.OpenHandle"/> throws when <c>open(2)</c> (or its <c>flock</c>) fails with <paramref name="errno"/>.</summary>
    public static Exception ForOpen(int errno, string path)
    {
        string full = FullPath(path);
        return errno switch
        {
            // Like .NET (and Windows): the file is missing if its directory exists, else a part of the path is.
            ENOENT => ParentExists(full)
                ? new FileNotFoundException($"Could not find file '{full}'.", full)
                : new DirectoryNotFoundException($"Could not find a part of the path '{full}'."),
            // A file where a directory should be (file/child): .NET says a part of the path is missing.
            ENOTDIR => new DirectoryNotFoundException($"Could not find a part of the path '{full}'."),
            EACCES or EPERM or EBADF => new UnauthorizedAccessException($"Access to the path '{full}' is denied."),
            ENAMETOOLONG => new PathTooLongException($"The path '{full}' is too long, or a component of the specified path is too long."),
            EAGAIN => new IOException($"The process cannot access the file '{full}' because it is being used by another process.", errno),
            _ => new IOException($"{Describe(errno)} : '{full}'", errno),
        };
    }

    /// <summary>The exception a failed <c>pread(2)</c> of <paramref name="path"/> becomes (as <see cref="RandomAccess"/> words it).</summary>
    public static IOException ForRead(int errno, string path) => new($"{Describe(errno)} : '{FullPath(path)}'", errno);

    /// <summary>The C library's text for <paramref name="errno"/> (<c>strerror</c>), as qemu prints it.</summary>
    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    private static string FullPath(string path)
    {
        try
        {
            return Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or IOException or NotSupportedException)
        {
            return path;
        }
    }

    private static bool ParentExists(string full)
    {
        string? parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(full));
        return parent is not null && Directory.Exists(parent);
    }
}
