using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Text;
using BackingChain.Formats.Qcow2;
using BackingChain.Internal;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Editing;

/// <summary>
/// Changes the backing file name and backing format recorded in a qcow2 or QED image, in place, as
/// <c>qemu-img rebase -u</c> does: only the header (and, for qcow2, its extensions) is rewritten; guest
/// data is not touched and the backing image is not opened.
/// </summary>
/// <remarks>
/// <para>Writes are ordered and flushed one by one so that an interruption after any of them (a failed write or
/// flush, a kill) leaves the old backing file and format or the new ones, never a name without its format: one
/// write makes the switch, within one 512-byte sector where the layout allows (the orders are explained on the
/// internal planners; docs/limits.md says which layouts need a write across sectors). The image is
/// opened without blocking and locked as qemu locks it (the byte-range locks of <c>qemu-img rebase -u</c>), so
/// an image a running qemu uses is refused with <see cref="BackingEditError.ImageInUse"/>, and qemu cannot open
/// the image to write while the edit runs.</para>
/// <para>Local files complete synchronously; the methods are asynchronous for the sake of callers.</para>
/// </remarks>
public static class BackingFileEditor
{
    /// <summary>The longest backing name qemu accepts in a qcow2 image, in bytes.</summary>
    internal const int MaxQcow2BackingNameLength = Qcow2Layout.MaxBackingFileNameLength;

    /// <summary>The longest backing format name qemu can keep (it uses a 16-byte buffer with a NUL), in bytes.</summary>
    internal const int MaxBackingFormatLength = Qcow2Layout.BackingFormatBufferSize - 1;

    private const int ProbeLength = Qcow2Layout.FullHeaderLength;

    /// <summary>Records <paramref name="backingName"/> and <paramref name="backingFormat"/> in the image, like <c>qemu-img rebase -u -b NAME -F FMT IMAGE</c>.</summary>
    /// <param name="imagePath">The qcow2 or QED image to change.</param>
    /// <param name="backingName">The backing name to store, verbatim (relative names are relative to the image's directory).</param>
    /// <param name="backingFormat">The backing image's format, as a qemu driver name such as <c>raw</c> or <c>qcow2</c>.</param>
    /// <returns>
    /// <see langword="true"/> when the format was recorded; <see langword="false"/> for a QED image and a
    /// format other than raw, which QED cannot record (qemu then probes the backing image, as it does after
    /// its own rebase).
    /// </returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    /// <exception cref="BackingEditException">The change was refused (see <see cref="BackingEditException.Error"/>), for example because another process uses the image; nothing was written.</exception>
    /// <exception cref="IOException">The image cannot be opened, read or written.</exception>
    /// <exception cref="UnauthorizedAccessException">Access to the image is denied.</exception>
    public static bool SetBackingFile(string imagePath, string backingName, string backingFormat)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        ArgumentNullException.ThrowIfNull(backingName);
        ArgumentNullException.ThrowIfNull(backingFormat);
        return SetBackingFile(imagePath, backingName, backingFormat, FileHeaderWriter.Create);
    }

    /// <summary><see cref="SetBackingFile(string, string, string)"/> with the writes going through <paramref name="writer"/> (tests make it fail).</summary>
    internal static bool SetBackingFile(string imagePath, string backingName, string backingFormat, Func<SafeFileHandle, IHeaderWriter> writer)
    {
        byte[] name = EncodeName(backingName);
        CheckFormat(backingFormat);
        using SafeFileHandle handle = OpenForEdit(imagePath);
        ImageHeader header = ReadHeader(handle);
        return Apply(writer(handle), header, name, backingFormat);
    }

    /// <summary>Removes the backing file (and its format) from the image, like <c>qemu-img rebase -u -b '' IMAGE</c>. The image then stands alone.</summary>
    /// <param name="imagePath">The qcow2 or QED image to change.</param>
    /// <exception cref="ArgumentNullException"><paramref name="imagePath"/> is <see langword="null"/>.</exception>
    /// <exception cref="BackingEditException">The change was refused; nothing was written.</exception>
    /// <exception cref="IOException">The image cannot be opened, read or written.</exception>
    /// <exception cref="UnauthorizedAccessException">Access to the image is denied.</exception>
    public static void RemoveBackingFile(string imagePath)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        using SafeFileHandle handle = OpenForEdit(imagePath);
        Apply(FileHeaderWriter.Create(handle), ReadHeader(handle), null, null);
    }

    /// <summary>
    /// Repairs an image's backing name after a move of everything under <paramref name="oldRoot"/> to
    /// <paramref name="newRoot"/>: the name is recomputed with <see cref="BackingNames.Relocate"/> and
    /// written when it changed. The recorded backing format (or its absence) is kept.
    /// </summary>
    /// <param name="imagePath">The image at its new location.</param>
    /// <param name="oldImagePath">Where the image was before the move.</param>
    /// <param name="oldRoot">The directory that was moved.</param>
    /// <param name="newRoot">Where it was moved to.</param>
    /// <returns>The backing name now stored, or <see langword="null"/> when the image has no backing file.</returns>
    /// <remarks>
    /// Relative paths are made absolute against the working directory; the new locations are made
    /// canonical (symlinks resolved) so that a relative name means the same to the kernel as to this
    /// computation. The old locations no longer exist, so they are only folded lexically.
    /// </remarks>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    /// <exception cref="BackingEditException">The change was refused (for example, the new name does not fit); nothing was written.</exception>
    /// <exception cref="IOException">The image cannot be opened, read or written.</exception>
    /// <exception cref="UnauthorizedAccessException">Access to the image is denied.</exception>
    internal static string? Relocate(string imagePath, string oldImagePath, string oldRoot, string newRoot)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        ArgumentNullException.ThrowIfNull(oldImagePath);
        ArgumentNullException.ThrowIfNull(oldRoot);
        ArgumentNullException.ThrowIfNull(newRoot);

        string newImage = Canonical(Path.GetFullPath(imagePath), fileItself: false);
        string newRootFull = Canonical(Path.GetFullPath(newRoot), fileItself: true);
        using SafeFileHandle handle = OpenForEdit(imagePath);
        ImageHeader header = ReadHeader(handle);
        (string? stored, string? format) = ReadBacking(handle, header);
        if (stored is null)
        {
            return null;
        }

        string relocated = BackingNames.Relocate(stored, Path.GetFullPath(oldImagePath), newImage, Path.GetFullPath(oldRoot), newRootFull);
        if (!string.Equals(relocated, stored, StringComparison.Ordinal))
        {
            Apply(FileHeaderWriter.Create(handle), header, EncodeName(relocated), format);
        }

        return relocated;
    }

    internal static bool Apply(IHeaderWriter writer, ImageHeader header, byte[]? name, string? format)
    {
        List<HeaderWrite> writes;
        bool recorded = true;
        if (header.IsQcow2)
        {
            if (name is not null && name.Length > MaxQcow2BackingNameLength)
            {
                throw new BackingEditException(BackingEditError.InvalidBackingName, $"the backing file name is {name.Length} bytes long; qcow2 allows at most {MaxQcow2BackingNameLength}");
            }

            byte[]? formatBytes = format is null ? null : Encoding.ASCII.GetBytes(format);
            writes = Qcow2BackingEdit.Plan(header.Bytes, header.ReachesEndOfFile, name, formatBytes);
        }
        else
        {
            if (name is not null && name.Length > QedBackingEdit.MaxBackingNameLength)
            {
                throw new BackingEditException(BackingEditError.InvalidBackingName, $"the backing file name is {name.Length} bytes long; QED allows at most {QedBackingEdit.MaxBackingNameLength}");
            }

            bool raw = string.Equals(format, "raw", StringComparison.Ordinal);
            recorded = format is null || raw;
            writes = QedBackingEdit.Plan(header.Bytes, name, raw);
        }

        foreach (HeaderWrite write in writes)
        {
            writer.Write(write.Offset, write.Data);
        }

        return recorded;
    }

    internal static (string? Name, string? Format) ReadBacking(SafeFileHandle handle, ImageHeader header)
    {
        if (header.IsQcow2)
        {
            HeaderError error = Qcow2Header.Read(header.Bytes, header.ReachesEndOfFile, out Qcow2Header parsed, out _);
            if (error != HeaderError.None)
            {
                throw new BackingEditException(
                    error == HeaderError.UnsupportedFeature ? BackingEditError.UnsupportedFeature : BackingEditError.MalformedHeader,
                    $"the qcow2 header cannot be read ({error}); it is left as it is");
            }

            return (parsed.GetBackingFileName(header.Bytes), parsed.GetBackingFormat(header.Bytes));
        }

        ReadOnlySpan<byte> qed = header.Bytes;
        ulong features = BinaryPrimitives.ReadUInt64LittleEndian(qed[16..]);
        if ((features & 1) == 0)
        {
            return (null, null);
        }

        uint offset = BinaryPrimitives.ReadUInt32LittleEndian(qed[56..]);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(qed[60..]);
        if (size > QedBackingEdit.MaxBackingNameLength)
        {
            throw new BackingEditException(BackingEditError.MalformedHeader, "the QED backing file name is too long; it is left as it is");
        }

        byte[] name = new byte[size];
        if (ReadFully(handle, name, offset) != name.Length)
        {
            throw new BackingEditException(BackingEditError.MalformedHeader, "the QED backing file name lies past the end of the file; it is left as it is");
        }

        int nul = Array.IndexOf(name, (byte)0);
        string text = Encoding.UTF8.GetString(name, 0, nul < 0 ? name.Length : nul);
        return (text.Length == 0 ? null : text, (features & 4) != 0 ? "raw" : null);
    }

    internal static ImageHeader ReadHeader(SafeFileHandle handle)
    {
        long length = RandomAccess.GetLength(handle);
        byte[] start = new byte[ProbeLength];
        int read = ReadFully(handle, start, 0);
        if (read >= sizeof(uint) && BinaryPrimitives.ReadUInt32BigEndian(start) == Qcow2Layout.Magic)
        {
            uint version = read >= 8 ? BinaryPrimitives.ReadUInt32BigEndian(start.AsSpan(4)) : 0;
            if (version is not (2 or 3))
            {
                throw new BackingEditException(BackingEditError.UnsupportedFormat, $"qcow version {version} images cannot record a backing format; only qcow2 (version 2 or 3) and QED can be changed in place");
            }

            if (!Qcow2BackingEdit.TryGetClusterSize(start.AsSpan(0, read), out int clusterSize))
            {
                throw new BackingEditException(BackingEditError.MalformedHeader, "the qcow2 header is malformed (cluster size); it is left as it is");
            }

            int wanted = (int)Math.Min(clusterSize, length);
            byte[] cluster0 = new byte[wanted];
            int got = ReadFully(handle, cluster0, 0);
            return new ImageHeader(true, cluster0.AsMemory(0, got), length <= clusterSize);
        }

        if (read >= QedBackingEdit.HeaderSize && BinaryPrimitives.ReadUInt32LittleEndian(start) == Formats.Qed.QedLayout.Magic)
        {
            return new ImageHeader(false, start.AsMemory(0, QedBackingEdit.HeaderSize), false);
        }

        throw new BackingEditException(BackingEditError.UnsupportedFormat, "the image is neither qcow2 nor QED; only those formats can record a backing file in place");
    }

    internal static SafeFileHandle OpenForEdit(string path) => OpenForEdit(path, null);

    /// <summary>
    /// Opens an image to edit it, as <see cref="OpenForEdit(string)"/>; with <paramref name="judged"/>, the file the
    /// name now leads to must be the one judged or planned (same device and inode), else
    /// <see cref="BackingEditError.ImageReplaced"/> is thrown before qemu's locks are taken or a byte is written: a
    /// name swapped for a symlink (or another file) between the verdict and the write never gets another file
    /// rewritten.
    /// </summary>
    internal static SafeFileHandle OpenForEdit(string path, ImageSourceIdentity? judged)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!UnixFile.IsSupported)
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        }

        // Without blocking (a FIFO swapped in cannot hang us), the type judged on the descriptor, .NET's own
        // exclusive lock (as FileShare.None takes), then qemu's locks, held until the handle is closed.
        SafeFileHandle handle = UnixFile.TryOpen(path, UnixFile.ReadWrite, out SafeFileHandle opened, out UnixFileStatus status, out int errno) switch
        {
            UnixOpenResult.Opened => opened,

            // What was judged was a regular file or block device: anything else now is another file.
            UnixOpenResult.NotAFileOrBlockDevice => throw (judged is null ? new IOException($"'{path}' is not a regular file or block device.") : Replaced(path)),
            _ => throw UnixErrors.ForOpen(errno, path),
        };
        try
        {
            if (judged is ImageSourceIdentity expected && ImageSourceIdentity.ForFile(status.Device, status.Inode) != expected)
            {
                throw Replaced(path);
            }

            QemuImageLocks.Acquire(handle, path);
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static Exception Replaced(string path) =>
        new BackingEditException(BackingEditError.ImageReplaced, $"'{path}' is no longer the file that was judged (it was replaced, perhaps by a symlink); nothing was written, check it again");

    /// <summary>The identity (device and inode) of an open image, or <see langword="null"/> where the platform has none.</summary>
    internal static ImageSourceIdentity? IdentityOf(SafeFileHandle handle) =>
        UnixFile.IsSupported && UnixFileStatus.TryGet(handle, out UnixFileStatus status) ? ImageSourceIdentity.ForFile(status.Device, status.Inode) : null;

    /// <summary>Opens an image only to read its header (a dry run): without blocking, without write access and without locks.</summary>
    internal static SafeFileHandle OpenForReading(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!UnixFile.IsSupported)
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }

        return UnixFile.TryOpen(path, UnixFile.ReadOnly, out SafeFileHandle opened, out _, out int errno) switch
        {
            UnixOpenResult.Opened => opened,
            UnixOpenResult.NotAFileOrBlockDevice => throw new IOException($"'{path}' is not a regular file or block device."),
            _ => throw UnixErrors.ForOpen(errno, path),
        };
    }

    /// <summary>The qcow2 external data file name, or <see langword="null"/> (QED has none). The header was already read by <see cref="ReadBacking"/>.</summary>
    internal static string? ReadDataFileName(ImageHeader header)
    {
        if (!header.IsQcow2 || Qcow2Header.Read(header.Bytes, header.ReachesEndOfFile, out Qcow2Header parsed, out _) != HeaderError.None)
        {
            return null;
        }

        return parsed.GetExternalDataFileName(header.Bytes);
    }

    private static int ReadFully(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = RandomAccess.Read(handle, buffer[total..], offset + total);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    internal static byte[] EncodeName(string name)
    {
        if (name.Length == 0)
        {
            throw new BackingEditException(BackingEditError.InvalidBackingName, "the backing file name is empty; remove the backing file instead");
        }

        if (name.Contains('\0', StringComparison.Ordinal))
        {
            throw new BackingEditException(BackingEditError.InvalidBackingName, "the backing file name contains a NUL character");
        }

        return Encoding.UTF8.GetBytes(name);
    }

    private static void CheckFormat(string format)
    {
        if (Encoding.UTF8.GetByteCount(format) > MaxBackingFormatLength)
        {
            throw new BackingEditException(BackingEditError.InvalidBackingFormat, $"the backing format name '{format}' is too long (qemu keeps at most {MaxBackingFormatLength} bytes)");
        }

        if (!ImageFormatNames.TryParse(format, out _))
        {
            throw new BackingEditException(BackingEditError.InvalidBackingFormat, $"Invalid format name: '{format}'");
        }
    }

    /// <summary>The canonical form of a path whose directory (or, with <paramref name="fileItself"/>, the path itself) exists.</summary>
    internal static string Canonical(string fullPath, bool fileItself)
    {
        if (fileItself)
        {
            return RealPath.TryResolve(fullPath) ?? fullPath;
        }

        string? directory = Path.GetDirectoryName(fullPath);
        string? resolved = directory is null ? null : RealPath.TryResolve(directory);
        return resolved is null ? fullPath : Path.Join(resolved, Path.GetFileName(fullPath));
    }

    internal readonly record struct ImageHeader(bool IsQcow2, ReadOnlyMemory<byte> Memory, bool ReachesEndOfFile)
    {
        public ReadOnlySpan<byte> Bytes => Memory.Span;
    }
}
