namespace BackingChain.Chain;

/// <summary>One problem or notable fact about a chain, with a stable code.</summary>
/// <param name="Code">One of <see cref="FindingCodes"/>.</param>
/// <param name="Layer">The index of the layer it concerns (0 = top).</param>
/// <param name="Message">A one-line explanation for people.</param>
public sealed record ChainFinding(string Code, int Layer, string Message);
