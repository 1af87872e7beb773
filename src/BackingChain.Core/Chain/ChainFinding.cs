namespace BackingChain.Chain;

/// <summary>One problem or notable fact about a chain, with a stable code.</summary>
/// <param name="Code">One of <see cref="FindingCodes"/>.</param>
/// <param name="Layer">The index of the layer it concerns (0 = top); it equals the number of layers for an image that could not be read.</param>
/// <param name="Message">A one-line explanation for people.</param>
public sealed record ChainFinding(string Code, int Layer, string Message)
{
    /// <summary>Gets the reference the finding speaks of (its role and stored name as data), or <see langword="null"/>.</summary>
    public ImageReference? Reference { get; internal init; }
}
