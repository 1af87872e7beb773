namespace BackingChain;

/// <summary>
/// The formats a service recorded for the images it keeps (a sidecar per image, an image table's <c>disk_format</c>):
/// its own word for what each stored file is. An image whose format the catalog records is read as that format and
/// never probed, as <c>qemu-img -f</c> reads it; so a stored image accepted as raw whose guest wrote a qcow2 header in
/// its first sector names nothing.
/// </summary>
/// <remarks>
/// <para>The store scanner (<see cref="Store.ImageStoreScannerOptions.FormatCatalog"/>) asks it for every file it
/// judges, and a resolver (<see cref="Walk.ImageChainResolverOptions.FormatCatalog"/>) for a top image it is given by
/// path without a format. Where a chain reaches a stored image through another image's backing name, qemu reads that
/// image as the name's recorded format, or probes it when none is recorded, whatever the catalog says; the walk does
/// the same, and says (a <c>format-mismatch</c> finding, and a <c>qemu-img rebase</c> line recording the catalog's
/// format) where the two disagree.</para>
/// <para>Called on the walk's thread, possibly from several walks at once, for every image walked: keep it quick and
/// safe for concurrent use (an in-memory map, or one small file read).</para>
/// </remarks>
public interface IImageFormatCatalog
{
    /// <summary>Gets the format recorded for the image at <paramref name="path"/>.</summary>
    /// <param name="path">The image's absolute path, as the store's directory joined with its place under it.</param>
    /// <param name="format">The recorded format, when there is one.</param>
    /// <returns><see langword="true"/> when the catalog records the image's format; <see langword="false"/> to have it probed.</returns>
    bool TryGetFormat(string path, out ImageFormat format);
}
