using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Enumeration;
using System.Text;
using BackingChain.Chain;
using BackingChain.Internal;
using BackingChain.Sources;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Store;

/// <summary>
/// Lists a store and opens its files, never through a symbolic link. On Linux every folder and file is opened
/// beneath a descriptor of the store's directory with <c>openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)</c> (on
/// kernels without it: by name with <c>O_NOFOLLOW</c>), and what is opened must be what was listed there (same
/// device and inode, same kind), so a link or another file put in its place after the listing is a finding, never
/// followed or read. What the listing cannot see (a folder it may not read, a name longer than <c>PATH_MAX</c>, a
/// link) is an entry with a finding, so that a scan never calls a store safe without having seen all of it.
/// </summary>
internal sealed class StoreListing : IDisposable
{
    /// <summary>PATH_MAX on Linux, in bytes, the terminating NUL included: no longer name can be opened.</summary>
    internal const int PathMax = 4096;

    private readonly string _root;
    private readonly ILogger _logger;
    private SafeFileHandle? _rootHandle;

    public StoreListing(string root, ILogger logger)
    {
        _root = root;
        _logger = logger;
    }

    /// <summary>The store's entries, depth first, each folder's in ordinal order; one folder is listed at a time.</summary>
    public IEnumerable<StoreEntry> List() => UnixFile.IsSupported ? ListFromDescriptors() : ListByNames();

    /// <summary>
    /// Opens a listed file for reading, never following a link. <see langword="null"/> when it cannot be: then
    /// <paramref name="problem"/> holds the finding, or <paramref name="vanished"/> says it is gone (removed or renamed).
    /// </summary>
    public FileImageSource? Open(StoreEntry entry, out StoreEntry problem, out bool vanished)
    {
        problem = default;
        vanished = false;
        if (!UnixFile.IsSupported)
        {
            return FileImageSource.Open(entry.Path);
        }

        int errno = UnixErrors.ENOSYS;
        int fd = _rootHandle is null ? -1 : UnixFile.OpenBeneathWithoutLinks(_rootHandle, entry.Relative, directoryOnly: false, out errno);
        if (fd < 0 && errno == UnixErrors.ENOSYS)
        {
            fd = UnixFile.OpenWithoutFollowing(entry.Path, directoryOnly: false, out errno);
        }

        if (fd < 0)
        {
            vanished = errno is UnixErrors.ENOENT or UnixErrors.ENOTDIR;
            problem = ForOpenFailure(entry.Path, entry.Relative, errno, directory: false);
            return null;
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            if (!UnixFileStatus.TryGet(handle, out UnixFileStatus status))
            {
                problem = StoreEntry.Problem(entry.Path, entry.Relative, FindingCodes.UnreadableFile, $"Could not open '{entry.Path}': {UnixErrors.Describe(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}");
                handle.Dispose();
                return null;
            }

            if (!status.IsRegularFile && !status.IsBlockDevice)
            {
                problem = Changed(entry.Path, entry.Relative, "a file", $"a {KindOf(status)}");
                handle.Dispose();
                return null;
            }

            if (status.Device != entry.Device || status.Inode != entry.Inode)
            {
                problem = Changed(entry.Path, entry.Relative, "a file", "another file");
                handle.Dispose();
                return null;
            }

            return FileImageSource.FromDescriptor(entry.Path, handle, status, canonicalPath: null);
        }
        catch (IOException ex)
        {
            // A block device whose size cannot be read.
            handle.Dispose();
            problem = StoreEntry.Problem(entry.Path, entry.Relative, FindingCodes.UnreadableFile, $"Could not open '{entry.Path}': {ex.Message.ReplaceLineEndings(" ")}");
            return null;
        }
    }

    public void Dispose() => _rootHandle?.Dispose();

    private IEnumerable<StoreEntry> ListFromDescriptors()
    {
        _rootHandle = UnixFile.OpenDirectoryPath(_root, out int rootErrno);
        if (_rootHandle is null || !UnixFileStatus.TryGet(_rootHandle, out UnixFileStatus rootStatus))
        {
            yield return Unlistable(_root, string.Empty, _rootHandle is null ? rootErrno : UnixErrors.EIO);
            yield break;
        }

        var pending = new Stack<(string Relative, ulong Device, ulong Inode)>();
        pending.Push((string.Empty, rootStatus.Device, rootStatus.Inode));
        var names = new List<string>();
        var entries = new List<StoreEntry>();
        var subdirectories = new List<(string Relative, ulong Device, ulong Inode)>();
        while (pending.TryPop(out (string Relative, ulong Device, ulong Inode) directory))
        {
            names.Clear();
            entries.Clear();
            subdirectories.Clear();
            ListDirectory(directory, names, entries, subdirectories);

            // Sorted, so that a store is listed in the same order every time.
            entries.Sort(static (a, b) => string.CompareOrdinal(a.Path, b.Path));
            subdirectories.Sort(static (a, b) => string.CompareOrdinal(a.Relative, b.Relative));
            for (int i = subdirectories.Count - 1; i >= 0; i--)
            {
                pending.Push(subdirectories[i]);
            }

            foreach (StoreEntry entry in entries)
            {
                yield return entry;
            }
        }
    }

    /// <summary>Lists one folder: its files and the problems into <paramref name="entries"/>, its folders into <paramref name="subdirectories"/>.</summary>
    private void ListDirectory(
        (string Relative, ulong Device, ulong Inode) directory, List<string> names, List<StoreEntry> entries, List<(string Relative, ulong Device, ulong Inode)> subdirectories)
    {
        string path = PathOf(directory.Relative);

        // The root itself is "." beneath its own descriptor; by name, "/." keeps a root given through a link usable.
        string beneath = directory.Relative.Length == 0 ? "." : directory.Relative;
        int fd = UnixFile.OpenBeneathWithoutLinks(_rootHandle!, beneath, directoryOnly: true, out int errno);
        if (fd < 0 && errno == UnixErrors.ENOSYS)
        {
            fd = UnixFile.OpenWithoutFollowing(directory.Relative.Length == 0 ? path + "/." : path, directoryOnly: true, out errno);
        }

        if (fd < 0)
        {
            if (errno is UnixErrors.ENOENT)
            {
                // Removed since its parent was listed: there is nothing left to see.
                StoreLog.DirectoryUnreadable(_logger, path, UnixErrors.Describe(errno));
                return;
            }

            entries.Add(ForOpenFailure(path, directory.Relative, errno, directory: true));
            return;
        }

        try
        {
            if (!UnixFileStatus.TryGet(fd, out UnixFileStatus status) || status.Device != directory.Device || status.Inode != directory.Inode)
            {
                entries.Add(Changed(path, directory.Relative, "a folder", "another folder"));
                return;
            }

            int failure = UnixDirectory.ReadNames(fd, names, out int undecodable);
            if (failure != 0)
            {
                entries.Add(Unlistable(path, directory.Relative, failure));
            }

            if (undecodable > 0)
            {
                entries.Add(StoreEntry.Problem(path, directory.Relative, FindingCodes.UnreadableFile,
                    $"{undecodable} name(s) in the folder '{path}' are not valid UTF-8; they were not scanned"));
            }

            foreach (string name in names)
            {
                string relative = directory.Relative.Length == 0 ? name : directory.Relative + "/" + name;
                string full = PathOf(relative);
                if (!UnixFileStatus.TryGetEntry(fd, name, out UnixFileStatus entry, out int entryErrno))
                {
                    if (entryErrno is UnixErrors.ENOENT)
                    {
                        continue; // removed since it was listed
                    }

                    // A folder that can be listed but not entered (read without search permission): one finding for it.
                    entries.Add(entryErrno is UnixErrors.EACCES or UnixErrors.EPERM
                        ? Unlistable(path, directory.Relative, entryErrno)
                        : StoreEntry.Problem(full, relative, FindingCodes.UnreadableFile, $"Could not look at '{full}': {UnixErrors.Describe(entryErrno)}"));
                    if (entryErrno is UnixErrors.EACCES or UnixErrors.EPERM)
                    {
                        return;
                    }

                    continue;
                }

                if (entry.IsSymbolicLink)
                {
                    entries.Add(StoreEntry.Problem(full, relative, FindingCodes.SymbolicLink,
                        $"'{full}' is a symbolic link; the scan does not follow links, so what it points to was not judged under this name"));
                }
                else if (Encoding.UTF8.GetByteCount(full) >= PathMax)
                {
                    entries.Add(TooLong(full, relative, entry.IsDirectory));
                }
                else if (entry.IsDirectory)
                {
                    subdirectories.Add((relative, entry.Device, entry.Inode));
                }
                else
                {
                    entries.Add(new StoreEntry(full, relative, !entry.IsRegularFile && !entry.IsBlockDevice, entry.Device, entry.Inode, null, null));
                }
            }
        }
        finally
        {
            UnixFile.Close(fd);
        }
    }

    /// <summary>Where descriptors are not available: .NET's listing, links reported and not followed.</summary>
    private IEnumerable<StoreEntry> ListByNames()
    {
        var options = new EnumerationOptions { RecurseSubdirectories = false, IgnoreInaccessible = false, ReturnSpecialDirectories = false };
        var directories = new Stack<string>();
        directories.Push(_root);
        var entries = new List<StoreEntry>();
        var subdirectories = new List<string>();
        while (directories.TryPop(out string? directory))
        {
            entries.Clear();
            subdirectories.Clear();
            try
            {
                var listed = new FileSystemEnumerable<(string Path, bool IsDirectory, bool IsLink)>(
                    directory, static (ref FileSystemEntry entry) => (entry.ToFullPath(), entry.IsDirectory, (entry.Attributes & FileAttributes.ReparsePoint) != 0), options);
                foreach ((string path, bool isDirectory, bool isLink) in listed)
                {
                    string relative = Path.GetRelativePath(_root, path);
                    if (isLink)
                    {
                        entries.Add(StoreEntry.Problem(path, relative, FindingCodes.SymbolicLink, $"'{path}' is a symbolic link; the scan does not follow links, so what it points to was not judged under this name"));
                    }
                    else if (isDirectory)
                    {
                        subdirectories.Add(path);
                    }
                    else
                    {
                        entries.Add(new StoreEntry(path, relative, false, 0, 0, null, null));
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
            {
                entries.Add(StoreEntry.Problem(directory, Path.GetRelativePath(_root, directory), FindingCodes.UnreadableDirectory,
                    $"Could not list the folder '{directory}': {ex.Message.ReplaceLineEndings(" ")}; nothing in it was judged"));
            }

            entries.Sort(static (a, b) => string.CompareOrdinal(a.Path, b.Path));
            subdirectories.Sort(StringComparer.Ordinal);
            for (int i = subdirectories.Count - 1; i >= 0; i--)
            {
                directories.Push(subdirectories[i]);
            }

            foreach (StoreEntry entry in entries)
            {
                yield return entry;
            }
        }
    }

    private string PathOf(string relative) => relative.Length == 0 ? _root : _root == "/" ? "/" + relative : _root + "/" + relative;

    private StoreEntry Unlistable(string path, string relative, int errno)
    {
        string reason = UnixErrors.Describe(errno);
        StoreLog.DirectoryUnreadable(_logger, path, reason);
        return StoreEntry.Problem(path, relative, FindingCodes.UnreadableDirectory, $"Could not list the folder '{path}': {reason}; nothing in it was judged");
    }

    private StoreEntry ForOpenFailure(string path, string relative, int errno, bool directory) => errno switch
    {
        // A link where the listing saw a file or folder (or in a folder above it), met by RESOLVE_NO_SYMLINKS or O_NOFOLLOW.
        UnixErrors.ELOOP or UnixErrors.EXDEV => Changed(path, relative, directory ? "a folder" : "a file", "reached only through a symbolic link"),
        UnixErrors.ENAMETOOLONG => TooLong(path, relative, directory),
        UnixErrors.ENOENT or UnixErrors.ENOTDIR when !directory => StoreEntry.Problem(path, relative, FindingCodes.UnreachableImage, $"Could not open '{path}': No such file or directory"),
        _ when directory => Unlistable(path, relative, errno),
        _ => StoreEntry.Problem(path, relative, FindingCodes.UnreadableFile, $"Could not open '{path}': {UnixErrors.Describe(errno)}"),
    };

    private static StoreEntry TooLong(string path, string relative, bool directory) => StoreEntry.Problem(path, relative, FindingCodes.PathTooLong,
        $"'{path}' is longer than PATH_MAX ({PathMax} bytes), so no program can open it by its name; {(directory ? "nothing in it was" : "it was not")} judged");

    private static StoreEntry Changed(string path, string relative, string listed, string now) => StoreEntry.Problem(path, relative, FindingCodes.ChangedDuringScan,
        $"'{path}' was {listed} when the store was listed and is {now} now; it was not read");

    private static string KindOf(UnixFileStatus status) => status.IsDirectory ? "folder" : status.IsSymbolicLink ? "symbolic link" : "FIFO, socket or character device";
}
