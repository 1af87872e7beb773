using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>
/// A fact about the input as a whole rather than any layer, recorded by the upload gate (what thorough detection saw,
/// its length, its retained windows): a finding, and the reason it rejects the chain, if it does. The judge takes these
/// beside the chain; the chain itself holds only what the walk found.
/// </summary>
internal readonly record struct InputFact(TrustReason? Rejects, ChainFinding Finding);
