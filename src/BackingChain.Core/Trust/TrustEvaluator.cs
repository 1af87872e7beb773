using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using BackingChain.Chain;
using BackingChain.Interop;

namespace BackingChain.Trust;

/// <summary>
/// Applies libvirt's rule to every layer of a resolved chain: a probed format may be used only if it is
/// raw, or the image names no other file, or every file it names is present and trusted. A pure function
/// of the chain and the policy.
/// </summary>
public static class TrustEvaluator
{
    /// <summary>Judges a chain.</summary>
    /// <param name="chain">The chain, as the resolver returned it (with the same policy).</param>
    /// <param name="policy">The policy.</param>
    /// <returns>The report.</returns>
    public static TrustReport Evaluate(ImageChain chain, TrustPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(chain);
        ArgumentNullException.ThrowIfNull(policy);

        var unreachableLayers = new HashSet<int>();
        foreach (ChainFinding finding in chain.Findings)
        {
            if (finding.Code is FindingCodes.UnreachableImage or FindingCodes.ProtocolReference)
            {
                unreachableLayers.Add(finding.Layer);
            }
        }

        var verdicts = ImmutableArray.CreateBuilder<LayerVerdict>(chain.Layers.Length);
        var findings = ImmutableArray.CreateBuilder<ChainFinding>();
        findings.AddRange(chain.Findings);
        var remediation = ImmutableArray.CreateBuilder<string>();

        for (int i = 0; i < chain.Layers.Length; i++)
        {
            ChainLayer layer = chain.Layers[i];
            ChainLayer? below = i + 1 < chain.Layers.Length ? chain.Layers[i + 1] : null;
            (TrustDecision decision, TrustReason reason) = Judge(layer, below, policy, unreachableLayers.Contains(i));
            verdicts.Add(new LayerVerdict(i, layer.Filename, layer.Format, layer.FormatSource, decision, reason));
        }

        for (int i = 0; i < chain.Layers.Length; i++)
        {
            ChainLayer layer = chain.Layers[i];
            ChainLayer? below = i + 1 < chain.Layers.Length ? chain.Layers[i + 1] : null;
            TrustReason reason = verdicts[i].Reason;

            if (reason == TrustReason.ProbedWithUntrustedReferences)
            {
                findings.Add(new ChainFinding(
                    FindingCodes.ProbedFormatWithReferences,
                    i,
                    $"The format of '{layer.Filename}' was probed as {layer.Format.GetQemuName()} and it names {Describe(layer.References)} that {(layer.References.Length == 1 ? "is" : "are")} not trusted; a guest could have written that header."));
            }

            // The one fix qemu-img can make: record the backing format in the image above a probed layer. Only
            // when the probed layer passed the rule: recording the format of a header a guest may have forged
            // (a probed qcow2 naming untrusted files) would bless the attack.
            if (below is not null && below.FormatSource == FormatSource.Probed && layer.Backing is { } backing
                && verdicts[i + 1].Decision == TrustDecision.Accepted
                && QemuImgRebaseCommand.CanRecordBackingFormat(layer.Format))
            {
                remediation.Add(QemuImgRebaseCommand.Format(layer.Format, below.Format, backing.StoredName, layer.Filename));
            }
        }

        return new TrustReport(chain, verdicts.MoveToImmutable(), findings.ToImmutable(), remediation.ToImmutable());
    }

    private static (TrustDecision, TrustReason) Judge(ChainLayer layer, ChainLayer? below, TrustPolicy policy, bool hasUnreachableReference)
    {
        if (layer.FormatSource != FormatSource.Probed)
        {
            if (hasUnreachableReference)
            {
                return (TrustDecision.Rejected, TrustReason.ReferenceUnreachable);
            }

            return (TrustDecision.Accepted, layer.FormatSource == FormatSource.Declared ? TrustReason.FormatDeclared : TrustReason.FormatRecorded);
        }

        if (layer.Format == ImageFormat.Raw)
        {
            return (TrustDecision.Accepted, TrustReason.ProbedRaw);
        }

        if (layer.References.IsEmpty)
        {
            return (TrustDecision.Accepted, TrustReason.ProbedWithoutReferences);
        }

        if (hasUnreachableReference)
        {
            return (TrustDecision.Rejected, TrustReason.ProbedWithUntrustedReferences);
        }

        foreach (ImageReference reference in layer.References)
        {
            bool trusted = ReferenceEquals(reference, layer.Backing) && below is not null
                ? below.IsLocationTrusted || policy.IsDigestTrusted(below.Sha256)
                : policy.IsLocationTrusted(reference);
            if (!trusted)
            {
                return (TrustDecision.Rejected, TrustReason.ProbedWithUntrustedReferences);
            }
        }

        return (TrustDecision.Accepted, TrustReason.ProbedWithTrustedReferences);
    }

    private static string Describe(ImmutableArray<ImageReference> references)
    {
        var names = new List<string>(references.Length);
        foreach (ImageReference reference in references)
        {
            names.Add($"'{reference.StoredName}'");
        }

        return string.Join(", ", names);
    }
}
