using System;
using System.Collections.Immutable;
using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>
/// Judges a chain the resolver or the upload gate walked, in the posture it was walked in (the chain records it as
/// a fact): the verdict cannot disagree with the gate that opened the files. A pure function
/// of the chain: nothing is opened or looked up again. <see cref="Walk.ImageChainResolver.CheckAsync(string, ImageFormat?, System.Threading.CancellationToken)"/>
/// walks and judges in one call.
/// </summary>
internal static class TrustEvaluator
{
    /// <summary>Judges a chain.</summary>
    /// <param name="chain">The chain, as the resolver or the upload gate returned it.</param>
    /// <param name="inputFacts">What the upload gate found about its input as a whole; none for a walk.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="chain"/> is <see langword="null"/>.</exception>
    public static TrustReport Evaluate(ImageChain chain, ImmutableArray<InputFact> inputFacts = default)
    {
        ArgumentNullException.ThrowIfNull(chain);
        return TrustJudge.Judge(chain, inputFacts.IsDefault ? ImmutableArray<InputFact>.Empty : inputFacts);
    }
}
