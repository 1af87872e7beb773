using System.Collections.Immutable;
using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>The verdict on a chain: per layer, the findings, and the commands that fix what can be fixed.</summary>
public sealed class TrustReport
{
    internal TrustReport(ImageChain chain, ImmutableArray<LayerVerdict> layers, ImmutableArray<ChainFinding> findings, ImmutableArray<string> remediation)
    {
        Chain = chain;
        Layers = layers;
        Findings = findings;
        Remediation = remediation;
    }

    /// <summary>The chain judged.</summary>
    public ImageChain Chain { get; }

    /// <summary>One verdict per layer, top first.</summary>
    public ImmutableArray<LayerVerdict> Layers { get; }

    /// <summary>The chain's findings plus the trust findings.</summary>
    public ImmutableArray<ChainFinding> Findings { get; }

    /// <summary>Exact <c>qemu-img rebase -u</c> command lines that record missing backing formats.</summary>
    public ImmutableArray<string> Remediation { get; }

    /// <summary>Whether the whole chain may be used: complete, and every layer accepted.</summary>
    public bool IsSafe
    {
        get
        {
            if (!Chain.IsComplete || Layers.IsEmpty)
            {
                return false;
            }

            foreach (LayerVerdict verdict in Layers)
            {
                if (verdict.Decision != TrustDecision.Accepted)
                {
                    return false;
                }
            }

            return true;
        }
    }
}
