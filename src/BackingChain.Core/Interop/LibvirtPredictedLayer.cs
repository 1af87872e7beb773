namespace BackingChain.Interop;

/// <summary>One layer of the chain libvirt builds for a disk, as its live XML shows it (<c>virsh dumpxml</c>).</summary>
public sealed class LibvirtPredictedLayer
{
    internal LibvirtPredictedLayer(string source, string format, bool isExplicit)
    {
        Source = source;
        Format = format;
        IsExplicit = isExplicit;
    }

    /// <summary>Gets the layer's source: the path libvirt joins from the name an image records (no symlink resolved, nothing normalised), or the XML's own source.</summary>
    public string Source { get; }

    /// <summary>Gets the format in libvirt's name for it (<c>ploop</c> for qemu's parallels, <c>vhd</c> for qemu's vhdx), as <c>&lt;format type&gt;</c> shows it.</summary>
    public string Format { get; }

    /// <summary>Gets whether the XML spells the layer out (libvirt uses it as given), rather than libvirt finding it in a header.</summary>
    public bool IsExplicit { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Source} ({Format})";
}
