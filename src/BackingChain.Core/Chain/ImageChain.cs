using System.Collections.Immutable;
using BackingChain.Trust;

namespace BackingChain.Chain;

/// <summary>
/// A resolved backing chain, ordered top (the image asked for) to base, with how the walk ended, what was found on
/// the way, every decision the trust gate took, and the policy it took them under. Immutable (safe to read from any thread); made only by the
/// resolver and the upload gate.
/// </summary>
public sealed class ImageChain
{
    internal ImageChain(
        ImmutableArray<ChainLayer> layers,
        ChainEnding ending,
        ImmutableArray<ChainFinding> findings,
        string? errorMessage,
        TrustPolicy policy,
        ImmutableArray<ReferenceDecision> decisions,
        ImmutableArray<InputFact> inputFacts = default,
        int readerFaults = 0,
        UnreadLayer? unreadLayer = null)
    {
        Layers = layers.IsDefault ? ImmutableArray<ChainLayer>.Empty : layers;
        Ending = ending;
        Findings = findings.IsDefault ? ImmutableArray<ChainFinding>.Empty : findings;
        ErrorMessage = errorMessage;
        Policy = policy;
        Decisions = decisions.IsDefault ? ImmutableArray<ReferenceDecision>.Empty : decisions;
        InputFacts = inputFacts.IsDefault ? ImmutableArray<InputFact>.Empty : inputFacts;
        ReaderFaults = readerFaults;
        UnreadLayer = unreadLayer;
    }

    /// <summary>Gets the layers, top first. Empty when the top image itself could not be read.</summary>
    public ImmutableArray<ChainLayer> Layers { get; }

    /// <summary>
    /// Gets the image below the last layer that the walk reached but could not describe (a header that does not parse,
    /// a feature not supported, a file it names refused...): what it was read as and why it stopped there. Its index
    /// is <see cref="Layers"/>' length. <see langword="null"/> when the walk ended otherwise.
    /// </summary>
    public UnreadLayer? UnreadLayer { get; }

    /// <summary>Gets how the walk ended.</summary>
    public ChainEnding Ending { get; }

    /// <summary>Gets what was found, with stable codes.</summary>
    public ImmutableArray<ChainFinding> Findings { get; }

    /// <summary>Gets a one-line account of what stopped the walk (worded like qemu-img), or <see langword="null"/> when it completed.</summary>
    public string? ErrorMessage { get; }

    /// <summary>Gets the policy the walk's gate asked; the verdict on this chain is taken under the same policy.</summary>
    public TrustPolicy Policy { get; }

    /// <summary>
    /// Gets the gate's decision on every file a layer names, in walk order (by layer, then in the order of
    /// <see cref="ChainLayer.References"/>). Decisions whose <see cref="ReferenceDecision.LayerIndex"/> equals the number of
    /// layers belong to the image that could not be read because of them.
    /// </summary>
    public ImmutableArray<ReferenceDecision> Decisions { get; }

    /// <summary>Gets whether every layer was read and the last one has no backing file.</summary>
    internal bool IsComplete => Ending == ChainEnding.Complete;

    /// <summary>
    /// Facts about the input as a whole rather than any layer, recorded by the upload gate: what thorough detection
    /// saw, and problems (its length, its retained windows), each of which rejects the chain.
    /// </summary>
    internal ImmutableArray<InputFact> InputFacts { get; }

    /// <summary>
    /// How many layers the walk's last-resort catch failed: a reader threw an exception it never throws on purpose
    /// (an index, overflow or argument error over bytes it failed to validate). The caller still gets a finding for
    /// the image, but each one is a reader bug; tests and the fuzz harness assert that this stays 0, so the catch cannot
    /// hide the failure they look for.
    /// </summary>
    internal int ReaderFaults { get; }

    /// <summary>The same chain with facts about the input added, for the judge.</summary>
    internal ImageChain WithInputFacts(ImmutableArray<InputFact> facts) =>
        new(Layers, Ending, Findings, ErrorMessage, Policy, Decisions, InputFacts.AddRange(facts), ReaderFaults, UnreadLayer);
}

/// <summary>A fact about the input as a whole: a finding, and the reason it rejects the chain, if it does.</summary>
internal readonly record struct InputFact(TrustReason? Rejects, ChainFinding Finding);
