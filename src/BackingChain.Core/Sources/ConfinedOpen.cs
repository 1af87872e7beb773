using System;
using System.IO;
using BackingChain.Internal;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Sources;

/// <summary>How <see cref="FileImageSource.OpenBeneath"/> ended.</summary>
internal enum ConfinedOpenOutcome
{
    /// <summary>Opened: a regular file or block device beneath the root.</summary>
    Opened,

    /// <summary>The name, by <c>..</c>, an absolute name or a symlink, resolves outside the root: refused (nothing is read).</summary>
    OutsideRoot,

    /// <summary>Nothing exists at the name (or the root itself is missing): "No such file or directory".</summary>
    Missing,

    /// <summary>Beneath the root, but a directory, FIFO, socket or character device: refused without blocking.</summary>
    NotAFileOrBlockDevice,

    /// <summary>The operating system denied access: "Permission denied".</summary>
    AccessDenied,

    /// <summary>Any other failure; <see cref="ConfinedOpenResult.Errno"/> says which.</summary>
    Failed,
}

/// <summary>The result of <see cref="FileImageSource.OpenBeneath"/>.</summary>
/// <param name="Outcome">What happened.</param>
/// <param name="Source">The source when <paramref name="Outcome"/> is <see cref="ConfinedOpenOutcome.Opened"/> (the caller disposes it), else <see langword="null"/>.</param>
/// <param name="Errno">The Linux errno behind <see cref="ConfinedOpenOutcome.Failed"/> (0 otherwise, or when unknown).</param>
internal readonly record struct ConfinedOpenResult(ConfinedOpenOutcome Outcome, FileImageSource? Source, int Errno)
{
    /// <summary>A reason worded like qemu's, for "Could not open 'NAME': REASON".</summary>
    public string Reason => Outcome switch
    {
        ConfinedOpenOutcome.Opened => "opened",
        ConfinedOpenOutcome.OutsideRoot => "refused: it resolves outside the trusted directory",
        ConfinedOpenOutcome.Missing => "No such file or directory",
        ConfinedOpenOutcome.NotAFileOrBlockDevice => "not a regular file or block device",
        ConfinedOpenOutcome.AccessDenied => "Permission denied",
        _ => Errno != 0 ? UnixErrors.Describe(Errno) : "the file cannot be opened",
    };

    internal static ConfinedOpenResult Of(ConfinedOpenOutcome outcome, int errno = 0) => new(outcome, null, errno);

    internal static ConfinedOpenResult FromErrno(int errno) => errno switch
    {
        UnixErrors.ENOENT or UnixErrors.ENOTDIR => Of(ConfinedOpenOutcome.Missing),
        UnixErrors.EXDEV => Of(ConfinedOpenOutcome.OutsideRoot),
        UnixErrors.EACCES or UnixErrors.EPERM => Of(ConfinedOpenOutcome.AccessDenied),
        _ => Of(ConfinedOpenOutcome.Failed, errno),
    };
}

/// <summary>The two Linux strategies behind <see cref="FileImageSource.OpenBeneath"/>, and the name-based one elsewhere.</summary>
internal static class ConfinedOpen
{
    public static ConfinedOpenResult Open(string rootDirectory, string path)
    {
        string root = Absolute(rootDirectory);
        using SafeFileHandle? rootHandle = UnixFile.OpenDirectoryPath(root, out int rootErrno);
        if (rootHandle is null)
        {
            return ConfinedOpenResult.FromErrno(rootErrno);
        }

        // The root as the kernel holds it: what every opened descriptor's path is compared with.
        string? canonicalRoot = UnixFile.DescriptorPath(rootHandle) ?? RealPath.TryResolve(root);
        if (canonicalRoot is null)
        {
            return ConfinedOpenResult.Of(ConfinedOpenOutcome.Failed);
        }

        // The name relative to the root, split lexically (never folding '..', which the kernel must judge with
        // the symlinks it meets). A name not spelled under the root may still reach it through a symlinked
        // ancestor: its resolved form decides which relative name to try, and the kernel still confines that.
        string absolute = Absolute(path);
        string? relative = RelativeTo(absolute, root) ?? RelativeTo(absolute, canonicalRoot);
        if (relative is null)
        {
            string? resolved = RealPath.TryResolve(absolute);
            if (resolved is null)
            {
                return ConfinedOpenResult.Of(File.Exists(absolute) || Directory.Exists(absolute) ? ConfinedOpenOutcome.Failed : ConfinedOpenOutcome.Missing);
            }

            relative = RelativeTo(resolved, canonicalRoot);
            if (relative is null)
            {
                // Refused without opening it: opening some devices has effects of its own.
                return ConfinedOpenResult.Of(ConfinedOpenOutcome.OutsideRoot);
            }
        }

        int fd = UnixFile.OpenBeneath(rootHandle, relative, UnixFile.ReadOnly, out int errno);
        bool kernelConfined = fd >= 0;
        if (fd < 0 && errno is not (UnixErrors.ENOSYS or UnixErrors.EXDEV))
        {
            return ConfinedOpenResult.FromErrno(errno);
        }

        if (fd < 0)
        {
            // No openat2 (Linux before 5.6), or a path RESOLVE_BENEATH will not walk: an absolute symlink (a store's
            // "base.qcow2 -> /var/lib/images/base-v2.qcow2" is one, even when it stays inside) or a '..' that climbs
            // out. Refuse what already resolves outside before opening it, then open and judge the descriptor itself.
            string? resolved = RealPath.TryResolve(Path.Join(canonicalRoot, relative));
            if (resolved is not null && !RealPath.IsUnder(resolved, canonicalRoot))
            {
                return ConfinedOpenResult.Of(ConfinedOpenOutcome.OutsideRoot);
            }

            fd = UnixFile.OpenAt(rootHandle, relative, UnixFile.ReadOnly, out errno);
            if (fd < 0)
            {
                return ConfinedOpenResult.FromErrno(errno);
            }
        }

        var opened = new SafeFileHandle(fd, ownsHandle: true);
        string? canonical = UnixFile.DescriptorPath(opened);
        if (canonical is null ? !kernelConfined : !RealPath.IsUnder(canonical, canonicalRoot))
        {
            // Without /proc the descriptor cannot be judged, and without openat2 nothing else vouches for it.
            opened.Dispose();
            return ConfinedOpenResult.Of(canonical is null ? ConfinedOpenOutcome.Failed : ConfinedOpenOutcome.OutsideRoot);
        }

        return UnixFile.Finish(opened, UnixFile.ReadOnly, out SafeFileHandle handle, out UnixFileStatus status, out errno) switch
        {
            UnixOpenResult.Opened => new ConfinedOpenResult(ConfinedOpenOutcome.Opened, FileImageSource.FromDescriptor(path, handle, status, canonical), 0),
            UnixOpenResult.NotAFileOrBlockDevice => ConfinedOpenResult.Of(ConfinedOpenOutcome.NotAFileOrBlockDevice),
            _ => ConfinedOpenResult.FromErrno(errno),
        };
    }

    /// <summary>Elsewhere than Linux: the canonical name decides (racy, documented), then a plain open.</summary>
    public static ConfinedOpenResult OpenByName(string rootDirectory, string path)
    {
        string? root = RealPath.TryResolve(Absolute(rootDirectory));
        string? resolved = RealPath.TryResolve(Absolute(path));
        if (root is null || resolved is null)
        {
            return ConfinedOpenResult.Of(ConfinedOpenOutcome.Missing);
        }

        if (!RealPath.IsUnder(resolved, root))
        {
            return ConfinedOpenResult.Of(ConfinedOpenOutcome.OutsideRoot);
        }

        try
        {
            return new ConfinedOpenResult(ConfinedOpenOutcome.Opened, FileImageSource.Open(path), 0);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return ConfinedOpenResult.Of(ConfinedOpenOutcome.Missing);
        }
        catch (UnauthorizedAccessException)
        {
            return ConfinedOpenResult.Of(ConfinedOpenOutcome.AccessDenied);
        }
        catch (IOException)
        {
            return ConfinedOpenResult.Of(ConfinedOpenOutcome.Failed);
        }
    }

    internal static string Absolute(string path) => RealPath.Absolute(path);

    /// <summary>The rest of <paramref name="path"/> after <paramref name="root"/> as a string prefix ending at a separator ("." for the root itself), or <see langword="null"/>.</summary>
    internal static string? RelativeTo(string path, string root)
    {
        string trimmed = root.TrimEnd('/');
        if (trimmed.Length == 0)
        {
            return path.TrimStart('/') is { Length: > 0 } rest ? rest : ".";
        }

        if (!path.StartsWith(trimmed, StringComparison.Ordinal) || (path.Length > trimmed.Length && path[trimmed.Length] != '/'))
        {
            return null;
        }

        string relative = path[trimmed.Length..].TrimStart('/');
        return relative.Length == 0 ? "." : relative;
    }
}
