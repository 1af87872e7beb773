using System.Collections.Immutable;
using System.IO;
using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>
/// Whether and when a file's digest may be computed. A pin is a name the host chose: only a reference the rule
/// refused (<see cref="TrustJudge.Admit"/> gave <see cref="TrustBasis.None"/>) and that spells a pinned location is
/// opened to be hashed, and only a regular file no larger than the policy's bound is hashed. Any other name is never
/// opened, looked up or hashed on a pin's account, whatever is there.
/// </summary>
internal static class DigestEligibility
{
    /// <summary>The pins a refused reference may still be opened against: empty when no digest may be computed for it.</summary>
    /// <param name="policy">The walk's policy.</param>
    /// <param name="basis">What the rule answered for the reference.</param>
    /// <param name="reference">The reference.</param>
    /// <param name="normalizedUrl">For a URL, its normal form as the location rule computed it; otherwise ignored.</param>
    public static ImmutableArray<ImagePin> PinsFor(TrustPolicy policy, TrustBasis basis, ImageReference reference, string? normalizedUrl)
    {
        if (basis != TrustBasis.None || !policy.PinsImages || PinKey(reference, normalizedUrl) is not { } key)
        {
            return ImmutableArray<ImagePin>.Empty;
        }

        return policy.PinsAt(key);
    }

    /// <summary>
    /// Whether an opened file may be hashed for a pin: never a device (whose content can change under the reader and
    /// whose length is not a file's), never more than <see cref="TrustPolicy.MaxDigestFileLength"/> bytes.
    /// </summary>
    /// <param name="policy">The walk's policy.</param>
    /// <param name="length">The opened file's length.</param>
    /// <param name="isDevice">Whether what was opened is a device rather than a regular file.</param>
    public static bool MayHash(TrustPolicy policy, long length, bool isDevice) => !isDevice && length <= policy.MaxDigestFileLength;

    /// <summary>
    /// The text a reference's name is compared with pinned locations in: a local name made absolute (against the
    /// working directory, as qemu opens it) and cleaned without looking at the file system, or a URL in the normal
    /// form the location rule already computed.
    /// </summary>
    private static string? PinKey(ImageReference reference, string? normalizedUrl)
    {
        if (reference.IsLocalPath)
        {
            return reference.FullName is { } local
                ? ImagePin.CleanLocalName(Path.IsPathRooted(local) ? local : Path.Join(Directory.GetCurrentDirectory(), local))
                : null;
        }

        return normalizedUrl;
    }
}
