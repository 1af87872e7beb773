using System;
using System.IO;
using System.Runtime.InteropServices;

namespace BackingChain.Internal;

/// <summary>
/// Canonical paths for trust decisions: every symlink in every component resolved (realpath(3)), so a
/// link inside a trusted root that points outside it is not trusted. Nothing is opened.
/// </summary>
internal static partial class RealPath
{
    /// <summary>The canonical absolute path, or <see langword="null"/> when it cannot be resolved (missing, or a loop of links).</summary>
    public static string? TryResolve(string path)
    {
        if (path.Length == 0 || path.Contains('\0', StringComparison.Ordinal))
        {
            return null;
        }

        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD())
        {
            try
            {
                return Path.GetFullPath(path);
            }
            catch (Exception ex) when (ex is ArgumentException or IOException or NotSupportedException)
            {
                return null;
            }
        }

        nint resolved = NativeRealPath(path, 0);
        if (resolved == 0)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            NativeFree(resolved);
        }
    }

    /// <summary>The path made absolute against the working directory, as qemu would open it (no link resolved, nothing looked up).</summary>
    public static string Absolute(string path) => Path.IsPathRooted(path) ? path : Path.Join(Directory.GetCurrentDirectory(), path);

    /// <summary>Whether <paramref name="canonicalPath"/> lies inside <paramref name="canonicalRoot"/> (both from <see cref="TryResolve"/>).</summary>
    public static bool IsUnder(string canonicalPath, string canonicalRoot)
    {
        if (canonicalRoot == "/")
        {
            return true;
        }

        return canonicalPath.StartsWith(canonicalRoot, StringComparison.Ordinal)
            && (canonicalPath.Length == canonicalRoot.Length || canonicalPath[canonicalRoot.Length] == '/');
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint NativeRealPath(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void NativeFree(nint pointer);
}
