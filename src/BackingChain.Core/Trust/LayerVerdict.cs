namespace BackingChain.Trust;

/// <summary>The trust decision for one layer of a chain.</summary>
/// <param name="Index">The layer's index (0 = top).</param>
/// <param name="Filename">The layer's name.</param>
/// <param name="Format">The format it was read as.</param>
/// <param name="FormatSource">Where the format came from.</param>
/// <param name="Decision">Accepted or rejected.</param>
/// <param name="Reason">Why.</param>
public sealed record LayerVerdict(int Index, string Filename, ImageFormat Format, Chain.FormatSource FormatSource, TrustDecision Decision, TrustReason Reason);
