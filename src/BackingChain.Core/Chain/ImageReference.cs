
namespace BackingChain.Chain;

/// <summary>A name one image stores for another file: a backing file, a data file, an extent or a parent.</summary>
public sealed class ImageReference
{
    /// <summary>Creates a reference.</summary>
    /// <param name="storedName">The name exactly as stored in the image.</param>
    /// <param name="role">What the file is to the image.</param>
    /// <param name="recordedFormat">The format recorded with the name, if any (qemu driver name).</param>
    /// <param name="kind">How the name is classified.</param>
    /// <param name="fullName">The name to open, by qemu's rules (<c>full-backing-filename</c>), or <see langword="null"/> when it cannot be formed.</param>
    internal ImageReference(string storedName, ReferenceRole role, string? recordedFormat, ReferenceKind kind, string? fullName)
    {
        StoredName = storedName;
        Role = role;
        RecordedFormat = recordedFormat;
        Kind = kind;
        FullName = fullName;
    }

    /// <summary>The name exactly as stored (qemu's <c>backing-filename</c>).</summary>
    public string StoredName { get; }

    /// <summary>What the file is to the image that names it.</summary>
    public ReferenceRole Role { get; }

    /// <summary>The format recorded next to the name (qemu's <c>backing-filename-format</c>), or <see langword="null"/>.</summary>
    public string? RecordedFormat { get; }

    /// <summary>How the name is classified.</summary>
    public ReferenceKind Kind { get; }

    /// <summary>The name resolved as qemu resolves it (<c>full-backing-filename</c>): not canonical, maybe relative to the working directory.</summary>
    public string? FullName { get; }

    /// <summary>
    /// Whether the name is a local path that the resolver can open without a protocol source. A relative name stored
    /// in an image read over a protocol (<c>http://h/dir/top.qcow2</c> naming <c>base.qcow2</c>) resolves to a URL, as
    /// in qemu, so it is not a local path.
    /// </summary>
    public bool IsLocalPath => Kind is ReferenceKind.RelativePath or ReferenceKind.AbsolutePath
        && (FullName is null || !QemuPaths.HasProtocol(FullName));

    /// <inheritdoc/>
    public override string ToString() => $"{Role} '{StoredName}'";
}
