namespace BackingChain.Editing;

/// <summary>Why <see cref="BackingFileEditor"/> refused to change an image. Stable: values are never renumbered.</summary>
public enum BackingEditError
{
    /// <summary>The image is neither qcow2 nor QED, the two formats whose backing name can be changed in place.</summary>
    UnsupportedFormat = 1,

    /// <summary>The image's header is malformed, so rewriting it could make things worse.</summary>
    MalformedHeader,

    /// <summary>The image uses a feature the editor does not know (an unknown incompatible or compatible bit), or is marked corrupt.</summary>
    UnsupportedFeature,

    /// <summary>The backing name is empty, contains a NUL, or is longer than the format allows (qcow2: 1023 bytes; QED: 4095).</summary>
    InvalidBackingName,

    /// <summary>The backing format is not a format name qemu knows, or is 16 bytes or longer (qemu keeps it in a 16-byte buffer).</summary>
    InvalidBackingFormat,

    /// <summary>The header, its extensions and the new name do not fit in the header area (qcow2: cluster 0).</summary>
    DoesNotFit,

    /// <summary>A qcow2 image whose external data file is marked raw (<c>data_file_raw</c>) cannot have a backing file.</summary>
    RawDataFileWithBacking,

    /// <summary>
    /// Another process (a running qemu, <c>qemu-img</c>, <c>qemu-nbd</c>) holds the image with a lock that forbids
    /// writing it, as qemu's own "Failed to get "write" lock" error says.
    /// </summary>
    ImageInUse,

    /// <summary>The image's backing name or format is no longer what the planned change was computed from (another writer changed it).</summary>
    ImageChanged,

    /// <summary>
    /// The name now leads to another file than the one judged or planned (device and inode differ): it was replaced,
    /// for example by a symlink to a file elsewhere, between the verdict (or plan) and the write. Nothing was written.
    /// </summary>
    ImageReplaced,
}
