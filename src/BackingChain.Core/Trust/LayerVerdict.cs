using System.Collections.Immutable;
using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>The trust decision for one layer of a chain.</summary>
public sealed class LayerVerdict
{
    internal LayerVerdict(int index, ChainLayer layer, TrustDecision decision, TrustReason reason, ImmutableArray<ReferenceDecision> references)
    {
        LayerIndex = index;
        Layer = layer;
        Decision = decision;
        Reason = reason;
        References = references;
    }

    /// <summary>Gets the layer's index (0 = top).</summary>
    public int LayerIndex { get; }

    /// <summary>Gets the layer judged.</summary>
    public ChainLayer Layer { get; }

    /// <summary>Gets the layer's name.</summary>
    public string FileName => Layer.FileName;

    /// <summary>Gets the format it was read as.</summary>
    public ImageFormat Format => Layer.Format;

    /// <summary>Gets where the format came from.</summary>
    public FormatSource FormatSource => Layer.FormatSource;

    /// <summary>Gets whether the layer may be used.</summary>
    public TrustDecision Decision { get; }

    /// <summary>Gets why.</summary>
    public TrustReason Reason { get; }

    /// <summary>Gets the gate's decision on every file the layer names, in the order of <see cref="ChainLayer.References"/>.</summary>
    public ImmutableArray<ReferenceDecision> References { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{LayerIndex}: {FileName} {Decision} ({Reason})";
}
