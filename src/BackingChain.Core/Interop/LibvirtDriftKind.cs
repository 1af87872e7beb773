namespace BackingChain.Interop;

/// <summary>How a libvirt <c>&lt;disk&gt;</c> chain and the images it names disagree.</summary>
public enum LibvirtDriftKind
{
    /// <summary>An explicit layer's file is not there (or cannot be opened): qemu will fail to start the disk.</summary>
    LayerMissing,

    /// <summary>An explicit layer cannot be read as the format the XML declares for it.</summary>
    FormatMismatch,

    /// <summary>An image records a backing name that is not the layer the XML puts below it.</summary>
    BackingNameMismatch,

    /// <summary>An image records a backing format other than the one the XML declares for the layer below it.</summary>
    BackingFormatMismatch,

    /// <summary>The XML puts a layer below an image that records no backing file.</summary>
    ExtraLayer,

    /// <summary>The XML ends the chain (<c>&lt;backingStore/&gt;</c>) at an image that records a backing file, which qemu will then not open.</summary>
    MissingLayer,

    /// <summary>
    /// The XML has an element or attribute libvirt does not read: a second <c>&lt;source&gt;</c>, <c>&lt;driver&gt;</c>,
    /// <c>&lt;format&gt;</c> or <c>&lt;backingStore&gt;</c> (libvirt reads the first), or a path attribute of another
    /// storage type (<c>file=</c> on a block disk). The chain judged is the one libvirt reads; what it ignores is
    /// reported here, since another reader of the same document may take it.
    /// </summary>
    IgnoredByLibvirt,
}
