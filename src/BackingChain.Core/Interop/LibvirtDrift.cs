namespace BackingChain.Interop;

/// <summary>One disagreement between a libvirt <c>&lt;disk&gt;</c> chain and the images on storage.</summary>
public sealed class LibvirtDrift
{
    internal LibvirtDrift(LibvirtDriftKind kind, int layer, string? expected, string? actual, string message)
    {
        Kind = kind;
        LayerIndex = layer;
        Expected = expected;
        Actual = actual;
        Message = message;
    }

    /// <summary>Gets what disagrees.</summary>
    public LibvirtDriftKind Kind { get; }

    /// <summary>Gets the explicit layer concerned, as an index into <see cref="LibvirtDiskChain.Layers"/> (0 = the disk's own source).</summary>
    public int LayerIndex { get; }

    /// <summary>Gets what the XML says (a source, a format), or <see langword="null"/> when it says nothing.</summary>
    public string? Expected { get; }

    /// <summary>Gets what the image says, or <see langword="null"/> when it says nothing.</summary>
    public string? Actual { get; }

    /// <summary>Gets one readable line.</summary>
    public string Message { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Kind} (layer {LayerIndex}): {Message}";
}
