using System;
using System.Collections.Immutable;
using BackingChain.Chain;
using BackingChain.Trust;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Editing;

/// <summary>
/// One missing backing format to record, natively, as <c>qemu-img rebase -u</c> would: the image keeps its backing
/// name and gains the format its backing image was probed as. <see cref="Plan"/> takes these from a verdict.
/// </summary>
/// <remarks>
/// Only what the verdict accepts is fixed: both the image written and the probed backing image must be accepted.
/// Recording the format of a probed layer the rule refused (a qcow2 header a guest may have written, naming files
/// nobody trusts) would turn the attack into the administrator's own declaration.
/// </remarks>
public sealed class BackingFormatFix
{
    private BackingFormatFix(int layerIndex, string imagePath, ImageSourceIdentity judged, ImageFormat imageFormat, string backingName, ImageFormat backingFormat)
    {
        Judged = judged;
        LayerIndex = layerIndex;
        ImagePath = imagePath;
        ImageFormat = imageFormat;
        BackingName = backingName;
        BackingFormat = backingFormat;
    }

    /// <summary>Gets the index in the judged chain of the image to change (0 = top).</summary>
    public int LayerIndex { get; }

    /// <summary>Gets the image to change, by the name the walk opened it by.</summary>
    public string ImagePath { get; }

    /// <summary>The file the verdict was about (device and inode): the edit writes that file or none.</summary>
    internal ImageSourceIdentity Judged { get; }

    /// <summary>Gets the image's format (qcow2 or QED).</summary>
    public ImageFormat ImageFormat { get; }

    /// <summary>Gets the backing name the image stores, which is kept.</summary>
    public string BackingName { get; }

    /// <summary>Gets the format to record: what the accepted backing image was probed as.</summary>
    public ImageFormat BackingFormat { get; }

    /// <summary>Gets the <c>qemu-img rebase -u</c> command line that makes the same change.</summary>
    public string QemuImgCommand => QemuImgRebaseCommand.ToCommandLine(ImageFormat, BackingFormat, BackingName, ImagePath);

    /// <summary>
    /// The fixes a verdict allows: for every local qcow2 image above a probed backing image, both accepted, the
    /// probed format; for a QED image, only raw (the one backing format QED can record).
    /// </summary>
    /// <param name="report">The verdict.</param>
    /// <returns>The fixes, top first; empty when there is nothing the verdict lets be fixed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="report"/> is <see langword="null"/>.</exception>
    public static ImmutableArray<BackingFormatFix> Plan(TrustReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var fixes = ImmutableArray.CreateBuilder<BackingFormatFix>();
        for (int i = 0; i + 1 < report.Layers.Length; i++)
        {
            LayerVerdict image = report.Layers[i];
            LayerVerdict below = report.Layers[i + 1];
            ChainLayer layer = image.Layer;
            if (image.Decision != TrustDecision.Accepted || below.Decision != TrustDecision.Accepted
                || below.FormatSource != FormatSource.Probed
                || layer.Backing is not { Role: ReferenceRole.BackingFile, RecordedFormat: null } backing
                || layer.Identity.Scheme != "file")
            {
                continue;
            }

            if (QemuImgRebaseCommand.CanRecordBackingFormat(layer.Format, below.Format))
            {
                fixes.Add(new BackingFormatFix(i, layer.FileName, layer.Identity, layer.Format, backing.StoredName, below.Format));
            }
        }

        return fixes.ToImmutable();
    }

    /// <summary>
    /// Records <see cref="BackingFormat"/> in the image, keeping <see cref="BackingName"/>, under qemu's locks and
    /// with the editor's crash-safe order of writes.
    /// </summary>
    /// <exception cref="BackingEditException">
    /// The change was refused and nothing was written: the image is in use (<see cref="BackingEditError.ImageInUse"/>),
    /// it no longer stores the judged backing name without a format (<see cref="BackingEditError.ImageChanged"/>), or
    /// its name now leads to another file than the one judged (<see cref="BackingEditError.ImageReplaced"/>).
    /// </exception>
    /// <exception cref="System.IO.IOException">The image cannot be opened, read or written.</exception>
    /// <exception cref="UnauthorizedAccessException">Access to the image is denied.</exception>
    public void Apply()
    {
        // The name is opened again (the walk's descriptor is closed), but only the file the verdict was about is written.
        using SafeFileHandle handle = BackingFileEditor.OpenForEdit(ImagePath, Judged);
        BackingFileEditor.ImageHeader header = BackingFileEditor.ReadHeader(handle);
        (string? stored, string? format) = BackingFileEditor.ReadBacking(handle, header);
        if (header.IsQcow2 != (ImageFormat == ImageFormat.Qcow2)
            || !string.Equals(stored, BackingName, StringComparison.Ordinal) || format is not null)
        {
            // The verdict was about the image as it was read; whatever changed since has not been judged.
            throw new BackingEditException(BackingEditError.ImageChanged, "the image's backing file or format changed since it was judged; check it again");
        }

        BackingFileEditor.Apply(FileHeaderWriter.Create(handle), header, BackingFileEditor.EncodeName(BackingName), BackingFormat.GetQemuName());
    }

    /// <inheritdoc/>
    public override string ToString() => QemuImgCommand;
}
