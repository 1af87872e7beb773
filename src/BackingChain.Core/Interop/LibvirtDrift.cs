namespace BackingChain.Interop;

/// <summary>One disagreement between a libvirt <c>&lt;disk&gt;</c> chain and the images on storage.</summary>
/// <param name="Kind">What disagrees.</param>
/// <param name="Layer">The explicit layer concerned, as an index into <see cref="LibvirtDiskChain.Layers"/> (0 = the disk's own source).</param>
/// <param name="Expected">What the XML says (a source, a format), or <see langword="null"/> when it says nothing.</param>
/// <param name="Actual">What the image says, or <see langword="null"/> when it says nothing.</param>
/// <param name="Message">One readable line.</param>
public sealed record LibvirtDrift(LibvirtDriftKind Kind, int Layer, string? Expected, string? Actual, string Message);
