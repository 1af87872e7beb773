using System;
using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>
/// The trust rules for http(s) redirects (the reader in <c>Sources/</c> follows them and asks these). A redirect is a reference the server makes instead of the image: its target
/// goes through the gate's own rule (<see cref="TrustJudge.Admit"/>, with the URL-prefix test every URL reference
/// gets), so a server under a trusted prefix cannot send the reader somewhere the policy would not open directly.
/// </summary>
internal static class HttpRedirects
{
    /// <summary>
    /// The rule for one walk's reference: a target is admitted as the gate would admit a URL that reference named
    /// (trusted under a prefix, by the policy's callback — which sees the target as the reference's canonical form —
    /// or followed untrusted when the policy copies qemu-img).
    /// </summary>
    /// <param name="policy">The walk's policy.</param>
    /// <param name="referrer">Where the format of the image naming the reference came from.</param>
    /// <param name="reference">The reference whose URL redirects; <see langword="null"/> for an image a caller names directly.</param>
    /// <returns>For a target in normal form, why it may be read, or <see cref="TrustBasis.None"/> when it may not.</returns>
    public static Func<string, TrustBasis> Gate(TrustPolicy policy, FormatSource referrer, ImageReference? reference) => target =>
    {
        bool trusted = policy.IsUrlTrusted(target)
            || (reference is not null && policy.Callback?.IsTrusted(reference, target) == true);
        return TrustJudge.Admit(policy, referrer, trusted, localReference: false);
    };

    /// <summary>The weaker of two reasons to read: a trusted URL that redirects somewhere followed untrusted is untrusted.</summary>
    public static TrustBasis Weaker(TrustBasis first, TrustBasis second) => first == TrustBasis.Location ? second : first;
}
