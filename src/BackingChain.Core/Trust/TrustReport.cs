using System.Collections.Immutable;
using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>
/// The verdict on a chain: per layer, the findings, and the commands that fix what can be fixed. Made only by the
/// judge, from the facts the walk recorded; immutable, so it may be read from any thread.
/// </summary>
public sealed class TrustReport
{
    internal TrustReport(
        ImageChain chain,
        ImmutableArray<LayerVerdict> layers,
        ImmutableArray<ChainFinding> findings,
        ImmutableArray<string> remediation,
        bool isSafe,
        TrustReason reason)
    {
        Chain = chain;
        Layers = layers;
        Findings = findings;
        Remediation = remediation;
        IsSafe = isSafe;
        Reason = reason;
    }

    /// <summary>Gets the chain judged, with every gate decision made while it was walked.</summary>
    public ImageChain Chain { get; }

    /// <summary>Gets the posture the chain was judged in.</summary>
    public TrustPosture Posture => TrustJudge.PostureOf(Chain);

    /// <summary>Gets one verdict per layer, top first.</summary>
    public ImmutableArray<LayerVerdict> Layers { get; }

    /// <summary>Gets the chain's findings plus the verdict's own, with stable codes.</summary>
    public ImmutableArray<ChainFinding> Findings { get; }

    /// <summary>Gets exact <c>qemu-img rebase -u</c> command lines that record missing backing formats of layers the verdict accepts.</summary>
    public ImmutableArray<string> Remediation { get; }

    /// <summary>Gets whether the whole chain may be used: every layer read and accepted, and the walk complete.</summary>
    public bool IsSafe { get; }

    /// <summary>Gets why: the first rejected layer's reason, or what stopped the walk, or, when safe, the top layer's reason.</summary>
    public TrustReason Reason { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{(IsSafe ? "safe" : "unsafe")} ({Reason}), {Layers.Length} layer(s)";
}
