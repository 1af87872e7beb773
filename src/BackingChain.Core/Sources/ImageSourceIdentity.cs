using System;

namespace BackingChain.Sources;

/// <summary>
/// The identity of an image's storage, used to detect loops: a device and inode pair for local files
/// (so two names of one file, such as a symlink and its target, are the same image), or a key for other
/// sources.
/// </summary>
/// <param name="Scheme">Where the identity comes from: <c>"file"</c>, <c>"memory"</c>, <c>"http"</c>...</param>
/// <param name="Device">The device number, for files.</param>
/// <param name="Inode">The inode number, for files.</param>
/// <param name="Key">A key unique within <paramref name="Scheme"/>, for sources without a device and inode.</param>
public readonly record struct ImageSourceIdentity(string Scheme, ulong Device, ulong Inode, string? Key)
{
    /// <summary>Makes the identity of a local file.</summary>
    /// <param name="device">The device number.</param>
    /// <param name="inode">The inode number.</param>
    /// <returns>The identity.</returns>
    public static ImageSourceIdentity ForFile(ulong device, ulong inode) => new("file", device, inode, null);

    /// <summary>Makes an identity from a key.</summary>
    /// <param name="scheme">The kind of source.</param>
    /// <param name="key">The key, unique within <paramref name="scheme"/>.</param>
    /// <returns>The identity.</returns>
    public static ImageSourceIdentity ForKey(string scheme, string key)
    {
        ArgumentNullException.ThrowIfNull(scheme);
        ArgumentNullException.ThrowIfNull(key);
        return new(scheme, 0, 0, key);
    }

    /// <inheritdoc/>
    public override string ToString() => Key is null ? $"{Scheme}:{Device}:{Inode}" : $"{Scheme}:{Key}";
}
