using System;

namespace BackingChain;

/// <summary>
/// The identity of an image's storage, used to detect loops: a device and inode pair for local files
/// (so two names of one file, such as a symlink and its target, are the same image), or a key for other
/// sources. Two identities are equal when every part is equal.
/// </summary>
public readonly struct ImageSourceIdentity : IEquatable<ImageSourceIdentity>
{
    private ImageSourceIdentity(string scheme, ulong device, ulong inode, string? key)
    {
        Scheme = scheme;
        Device = device;
        Inode = inode;
        Key = key;
    }

    /// <summary>Gets where the identity comes from: <c>"file"</c>, <c>"memory"</c>, <c>"http"</c>…</summary>
    public string Scheme { get; }

    /// <summary>Gets the device number, for files.</summary>
    public ulong Device { get; }

    /// <summary>Gets the inode number, for files.</summary>
    public ulong Inode { get; }

    /// <summary>Gets the key, unique within <see cref="Scheme"/>, for sources without a device and inode (for http, the URL read).</summary>
    public string? Key { get; }

    /// <summary>
    /// Whether the source lies on this machine: a local file, or bytes the caller handed over in process (memory, an
    /// upload stream). Anything else (http, or a source of the caller's own) is another machine's: its header is not
    /// the host's word (the judge), and each request costs a round trip (reads are coalesced).
    /// </summary>
    internal bool IsLocal => Scheme is "file" or "memory" or "upload";

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

    /// <summary>Compares two identities.</summary>
    /// <param name="left">The first.</param>
    /// <param name="right">The second.</param>
    /// <returns>Whether they are equal.</returns>
    public static bool operator ==(ImageSourceIdentity left, ImageSourceIdentity right) => left.Equals(right);

    /// <summary>Compares two identities.</summary>
    /// <param name="left">The first.</param>
    /// <param name="right">The second.</param>
    /// <returns>Whether they differ.</returns>
    public static bool operator !=(ImageSourceIdentity left, ImageSourceIdentity right) => !left.Equals(right);

    /// <inheritdoc/>
    public bool Equals(ImageSourceIdentity other) =>
        string.Equals(Scheme, other.Scheme, StringComparison.Ordinal) && Device == other.Device && Inode == other.Inode
        && string.Equals(Key, other.Key, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is ImageSourceIdentity other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Scheme, Device, Inode, Key);

    /// <inheritdoc/>
    public override string ToString() => Key is null ? $"{Scheme}:{Device}:{Inode}" : $"{Scheme}:{Key}";
}
