using System.Collections.Immutable;

namespace BackingChain.Chain;

/// <summary>
/// A resolved backing chain, ordered top (the image asked for) to base, with how the walk ended, what was found on
/// the way, every decision the trust gate took, and the posture it took them under (a fact, not the policy: the model
/// names no type of the trust layer). Immutable (safe to read from any thread); made only by the
/// resolver and the upload gate.
/// </summary>
public sealed class ImageChain
{
    internal ImageChain(
        ImmutableArray<ChainLayer> layers,
        ChainEnding ending,
        ImmutableArray<ChainFinding> findings,
        string? errorMessage,
        IWalkPosture policy,
        ImmutableArray<ReferenceDecision> decisions,
        int readerFaults = 0,
        UnreadLayer? unreadLayer = null)
    {
        Layers = layers.IsDefault ? ImmutableArray<ChainLayer>.Empty : layers;
        Ending = ending;
        Findings = findings.IsDefault ? ImmutableArray<ChainFinding>.Empty : findings;
        ErrorMessage = errorMessage;
        ReadsUntrustedImage = policy.ReadsUntrustedImage;
        Decisions = decisions.IsDefault ? ImmutableArray<ReferenceDecision>.Empty : decisions;
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

    /// <summary>Whether the walk was taken in the untrusted-image posture; the verdict is taken in the same posture.</summary>
    internal bool ReadsUntrustedImage { get; }

    /// <summary>
    /// Gets the gate's decision on every file a layer names, in walk order (by layer, then in the order of
    /// <see cref="ChainLayer.References"/>). Decisions whose <see cref="ReferenceDecision.LayerIndex"/> equals the number of
    /// layers belong to the image that could not be read because of them.
    /// </summary>
    public ImmutableArray<ReferenceDecision> Decisions { get; }

    /// <summary>Gets whether every layer was read and the last one has no backing file.</summary>
    internal bool IsComplete => Ending == ChainEnding.Complete;

    /// <summary>
    /// How many layers the walk's last-resort catch failed: a reader threw an exception it never throws on purpose
    /// (an index, overflow or argument error over bytes it failed to validate). The caller still gets a finding for
    /// the image, but each one is a reader bug; tests and the fuzz harness assert that this stays 0, so the catch cannot
    /// hide the failure they look for.
    /// </summary>
    internal int ReaderFaults { get; }
}
