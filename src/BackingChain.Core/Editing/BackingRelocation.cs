using System;
using System.IO;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Editing;

/// <summary>
/// What relocating one qcow2 or QED image after a move would change: the backing name it stores now and the
/// name it needs at its new place. Made by <see cref="Plan"/>, which writes nothing (a dry run);
/// <see cref="Apply"/> then writes the new name, keeping the recorded backing format.
/// </summary>
/// <remarks>
/// <para>The new names are relative where the image and its backing image
/// moved together, absolute where only one of them moved, untouched where neither did or the name is not a
/// local path (protocol, <c>json:</c> and Windows names).</para>
/// <para>A qcow2 external data file name is reported (<see cref="DataFileName"/>, <see cref="RelocatedDataFileName"/>)
/// but not rewritten: the in-place editor changes the backing name and format only. qemu opens a relative data file
/// name from its working directory, not from the image's, so only an absolute one is relocated (absolute again).</para>
/// </remarks>
public sealed class BackingRelocation
{
    private BackingRelocation(string imagePath, ImageSourceIdentity? planned, string oldImagePath, string? storedName, string? newName, string? backingFormat, string? dataFileName, string? relocatedDataFileName)
    {
        Planned = planned;
        ImagePath = imagePath;
        OldImagePath = oldImagePath;
        StoredName = storedName;
        NewName = newName;
        BackingFormat = backingFormat;
        DataFileName = dataFileName;
        RelocatedDataFileName = relocatedDataFileName;
    }

    /// <summary>The file planned (device and inode): <see cref="Apply"/> writes that file or none.</summary>
    internal ImageSourceIdentity? Planned { get; }

    /// <summary>Gets the image, as it was given to <see cref="Plan"/>.</summary>
    public string ImagePath { get; }

    /// <summary>Gets where the image was before the move (its own path when it lies outside the moved tree).</summary>
    public string OldImagePath { get; }

    /// <summary>Gets the backing name stored now, or <see langword="null"/> when the image has no backing file.</summary>
    public string? StoredName { get; }

    /// <summary>Gets the backing name the image needs after the move (equal to <see cref="StoredName"/> when nothing changes).</summary>
    public string? NewName { get; }

    /// <summary>Gets the recorded backing format, kept as it is (<see langword="null"/> when none is recorded).</summary>
    public string? BackingFormat { get; }

    /// <summary>Gets the qcow2 external data file name stored now, or <see langword="null"/>.</summary>
    public string? DataFileName { get; }

    /// <summary>Gets the data file name the image would need after the move; <see cref="Apply"/> does not write it.</summary>
    public string? RelocatedDataFileName { get; }

    /// <summary>Gets whether <see cref="Apply"/> changes the backing name.</summary>
    public bool ChangesBackingName => !string.Equals(StoredName, NewName, StringComparison.Ordinal);

    /// <summary>Gets whether the data file name would need a change that is left undone.</summary>
    public bool LeavesDataFileName => !string.Equals(DataFileName, RelocatedDataFileName, StringComparison.Ordinal);

    /// <summary>
    /// Reads an image's header and computes its names after everything under <paramref name="oldRoot"/> was moved to
    /// <paramref name="newRoot"/>. Nothing is written and no lock is taken.
    /// </summary>
    /// <param name="imagePath">The image at its place now: under <paramref name="newRoot"/> when it moved, elsewhere when only its backing image did.</param>
    /// <param name="oldRoot">The directory that was moved (it need not exist any more).</param>
    /// <param name="newRoot">Where it was moved to (it must exist).</param>
    /// <returns>The plan.</returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException">A path is empty.</exception>
    /// <exception cref="BackingEditException">The image is not qcow2 or QED, its header cannot be read, or the new name does not fit in it.</exception>
    /// <exception cref="IOException">The image cannot be opened or read.</exception>
    /// <exception cref="UnauthorizedAccessException">Access to the image is denied.</exception>
    public static BackingRelocation Plan(string imagePath, string oldRoot, string newRoot)
    {
        ArgumentNullException.ThrowIfNull(imagePath);
        ArgumentNullException.ThrowIfNull(oldRoot);
        ArgumentNullException.ThrowIfNull(newRoot);
        ArgumentException.ThrowIfNullOrEmpty(oldRoot);
        ArgumentException.ThrowIfNullOrEmpty(newRoot);

        // The new places exist and are made canonical, so that a relative name means to the kernel what it means
        // here; the old ones are gone and can only be folded as text.
        string newImage = BackingFileEditor.Canonical(Path.GetFullPath(imagePath), fileItself: false);
        string newRootFull = BackingFileEditor.Canonical(Path.GetFullPath(newRoot), fileItself: true);
        string oldRootFull = Path.GetFullPath(oldRoot);
        string oldImage = Under(newImage, newRootFull) is string rest ? Path.Join(oldRootFull, rest) : newImage;

        using SafeFileHandle handle = BackingFileEditor.OpenForReading(imagePath);
        BackingFileEditor.ImageHeader header = BackingFileEditor.ReadHeader(handle);
        (string? stored, string? format) = BackingFileEditor.ReadBacking(handle, header);
        string? dataFile = BackingFileEditor.ReadDataFileName(header);
        string? newName = stored is null ? null : BackingNames.Relocate(stored, oldImage, newImage, oldRootFull, newRootFull);
        string? newDataFile = dataFile is null ? null : BackingNames.RelocateAbsolute(dataFile, oldRootFull, newRootFull);
        if (newName is not null && !string.Equals(newName, stored, StringComparison.Ordinal))
        {
            // The whole edit is planned against the bytes just read, and the writes discarded: a name that does not
            // fit is refused now, in the dry run, rather than half-way through a relocation.
            BackingFileEditor.Apply(DiscardingWriter.Instance, header, BackingFileEditor.EncodeName(newName), format);
        }

        return new BackingRelocation(imagePath, BackingFileEditor.IdentityOf(handle), oldImage, stored, newName, format, dataFile, newDataFile);
    }

    /// <summary>
    /// Writes <see cref="NewName"/> with the recorded backing format kept, as <c>qemu-img rebase -u</c> would, when it
    /// differs from the stored name. The image is locked as qemu locks it while the header is rewritten.
    /// </summary>
    /// <returns><see langword="true"/> when the header was rewritten; <see langword="false"/> when nothing needed to change.</returns>
    /// <exception cref="BackingEditException">
    /// The change was refused: the image is in use (<see cref="BackingEditError.ImageInUse"/>), its backing name or
    /// format changed since it was planned (<see cref="BackingEditError.ImageChanged"/>), its name now leads to another
    /// file than the one planned (<see cref="BackingEditError.ImageReplaced"/>), or the name does not fit.
    /// Nothing was written.
    /// </exception>
    /// <exception cref="IOException">The image cannot be opened, read or written.</exception>
    /// <exception cref="UnauthorizedAccessException">Access to the image is denied.</exception>
    public bool Apply()
    {
        if (!ChangesBackingName)
        {
            return false;
        }

        // The name is opened again, but only the file planned is written: a name swapped meanwhile is refused.
        using SafeFileHandle handle = BackingFileEditor.OpenForEdit(ImagePath, Planned);
        BackingFileEditor.ImageHeader header = BackingFileEditor.ReadHeader(handle);
        (string? stored, string? format) = BackingFileEditor.ReadBacking(handle, header);
        if (!string.Equals(stored, StoredName, StringComparison.Ordinal) || !string.Equals(format, BackingFormat, StringComparison.Ordinal))
        {
            // Another writer changed the image between plan and apply: the plan was computed from names it no longer has.
            throw new BackingEditException(BackingEditError.ImageChanged, "the image's backing file changed since the relocation was planned; plan again");
        }

        BackingFileEditor.Apply(FileHeaderWriter.Create(handle), header, BackingFileEditor.EncodeName(NewName!), format);
        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{ImagePath}: '{StoredName}' -> '{NewName}'";

    /// <summary>The part of <paramref name="path"/> below <paramref name="root"/>, or <see langword="null"/> when it is not below it.</summary>
    private static string? Under(string path, string root)
    {
        string prefix = root.EndsWith('/') ? root : root + "/";
        return path.StartsWith(prefix, StringComparison.Ordinal) && path.Length > prefix.Length ? path[prefix.Length..] : null;
    }

    /// <summary>Takes the planned writes and drops them: the plan is checked, nothing is written.</summary>
    private sealed class DiscardingWriter : IHeaderWriter
    {
        public static readonly DiscardingWriter Instance = new();

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
        }
    }
}
