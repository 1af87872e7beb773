namespace BackingChain.Chain;

/// <summary>One problem or notable fact about a chain, with a stable code.</summary>
public sealed class ChainFinding
{
    internal ChainFinding(string code, int layer, string message)
    {
        Code = code;
        LayerIndex = layer;
        Message = message;
    }

    /// <summary>Gets the finding's stable code, one of <see cref="FindingCodes"/>.</summary>
    public string Code { get; }

    /// <summary>
    /// Gets the index of the layer it concerns (0 = top); it equals the number of layers for an image that could not
    /// be read.
    /// </summary>
    public int LayerIndex { get; }

    /// <summary>Gets a one-line explanation for people.</summary>
    public string Message { get; }

    /// <summary>Gets the reference the finding speaks of (its role and stored name as data), or <see langword="null"/>.</summary>
    public ImageReference? Reference { get; internal init; }

    /// <inheritdoc/>
    public override string ToString() => $"{Code} (layer {LayerIndex}): {Message}";
}
