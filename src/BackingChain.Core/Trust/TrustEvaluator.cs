using System;
using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>
/// Judges a chain the resolver or the upload gate walked, under the policy it was walked with
/// (<see cref="ImageChain.Policy"/>): the verdict cannot disagree with the gate that opened the files. A pure function
/// of the chain: nothing is opened or looked up again. <see cref="ImageChainResolver.CheckAsync(string, ImageFormat?, System.Threading.CancellationToken)"/>
/// walks and judges in one call.
/// </summary>
internal static class TrustEvaluator
{
    /// <summary>Judges a chain.</summary>
    /// <param name="chain">The chain, as the resolver or the upload gate returned it.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="chain"/> is <see langword="null"/>.</exception>
    public static TrustReport Evaluate(ImageChain chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        return TrustJudge.Judge(chain);
    }
}
