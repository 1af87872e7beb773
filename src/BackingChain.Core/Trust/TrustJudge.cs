using System.Collections.Generic;
using System.Collections.Immutable;
using System.Text;
using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>
/// The one place that decides. <see cref="Admit"/> is the gate's rule — may a file a layer names be opened — asked
/// by the walk before anything is opened, for files, sources and uploads alike. <see cref="Judge(ImageChain, ImmutableArray{InputFact})"/> is the
/// verdict: a pure function of the facts the walk recorded (layers, gate decisions, ending, input problems) and
/// the policy's posture. It touches no file system.
/// </summary>
internal static class TrustJudge
{
    /// <summary>The gate's rule for one reference, before any digest is considered.</summary>
    /// <param name="policy">The policy.</param>
    /// <param name="referrer">Where the format of the image that names the file came from.</param>
    /// <param name="trustedByLocation">Whether the file lies in a trusted location.</param>
    /// <returns>Why it may be opened, or <see cref="TrustBasis.None"/> when only a pinned digest could still vouch for it.</returns>
    /// <param name="localReference">Whether the reference is a local path; a URL is opened only when trusted (or followed like qemu-img).</param>
    /// <param name="localReferrer">Whether the image that names the file was read from this machine (<see cref="ImageSourceIdentity.IsLocal"/>): the header of any other is another machine's word.</param>
    public static TrustBasis Admit(TrustPolicy policy, FormatSource referrer, bool trustedByLocation, bool localReference = true, bool localReferrer = true)
    {
        if (trustedByLocation)
        {
            return TrustBasis.Location;
        }

        if (!LocationMatters(policy.Posture, referrer, localReference, localReferrer))
        {
            return TrustBasis.AuthenticFormat;
        }

        return policy.FollowUntrustedReferences ? TrustBasis.FollowedUntrusted : TrustBasis.None;
    }

    /// <summary>
    /// The rule's core, asked by the gate and by the verdict alike: the files an image names must be trusted (by
    /// location or pinned digest) when its format was probed — a guest may have written that header — or, in the
    /// untrusted-image posture, whatever its format source.
    /// </summary>
    /// <param name="posture">The policy's posture.</param>
    /// <param name="probed">Whether the format of the image naming the files was probed.</param>
    public static bool RequiresTrust(TrustPosture posture, bool probed) => probed || posture == TrustPosture.UntrustedImage;

    /// <summary>
    /// Whether a reference's location can change the gate's answer, so that it must be judged (and, for a local
    /// name, its symlinks resolved). Host posture: a declared or recorded format is the administrator's word, so the
    /// local files it names are followed wherever they lie. Not so for URLs: the administrator vouches for the
    /// image's format, not for every server it may name. Nor for a header read from another machine: its bytes are
    /// that machine's word, whatever format it was declared as.
    /// </summary>
    /// <param name="posture">The policy's posture.</param>
    /// <param name="referrer">Where the format of the image that names the file came from.</param>
    /// <param name="localReference">Whether the reference is a local path.</param>
    /// <param name="localReferrer">Whether the image that names the file was read from this machine.</param>
    public static bool LocationMatters(TrustPosture posture, FormatSource referrer, bool localReference, bool localReferrer) =>
        RequiresTrust(posture, referrer == FormatSource.Probed) || !localReference || !localReferrer;

    /// <summary>
    /// Whether the file a decision is about is trusted itself — by location or by pinned digest — as the probed-format
    /// rule and the untrusted-image posture require; a format's authenticity or qemu-img's copying vouch for nothing.
    /// </summary>
    public static bool IsTrusted(ReferenceDecision decision) => decision.Basis is TrustBasis.Location or TrustBasis.Digest;

    /// <summary>The posture a chain was walked in, which is the one it is judged in.</summary>
    public static TrustPosture PostureOf(ImageChain chain) => chain.ReadsUntrustedImage ? TrustPosture.UntrustedImage : TrustPosture.Host;

    /// <summary>The verdict on a walked chain.</summary>
    public static TrustReport Judge(ImageChain chain) => Judge(chain, ImmutableArray<InputFact>.Empty);

    /// <summary>The verdict on a walked chain and the facts the upload gate recorded about its input as a whole.</summary>
    public static TrustReport Judge(ImageChain chain, ImmutableArray<InputFact> inputFacts)
    {
        TrustPosture posture = PostureOf(chain);
        var verdicts = ImmutableArray.CreateBuilder<LayerVerdict>(chain.Layers.Length);
        var findings = ImmutableArray.CreateBuilder<ChainFinding>();
        TrustReason? firstRejection = null;
        foreach (InputFact fact in inputFacts)
        {
            findings.Add(fact.Finding);
            firstRejection ??= fact.Rejects;
        }

        findings.AddRange(chain.Findings);
        var remediation = ImmutableArray.CreateBuilder<string>();

        for (int i = 0; i < chain.Layers.Length; i++)
        {
            ChainLayer layer = chain.Layers[i];
            ImmutableArray<ReferenceDecision> decisions = DecisionsOf(chain, i);
            TrustReason reason = JudgeLayer(layer, decisions, posture, layer.Identity.IsLocal);
            bool accepted = IsAcceptance(reason);
            verdicts.Add(new LayerVerdict(i, layer, accepted ? TrustDecision.Accepted : TrustDecision.Rejected, reason, decisions));
            firstRejection ??= accepted ? null : reason;
            AddLayerFindings(layer, i, reason, decisions, findings);
            if (posture == TrustPosture.Host)
            {
                // The host posture accepts what qemu opens, but says what it saw: the same facts refuse an image
                // from someone else (in that posture they are the layer's reason, reported with it above).
                foreach (string problem in layer.StructureProblems)
                {
                    findings.Add(new ChainFinding(FindingCodes.MalformedHeader, i, $"'{layer.FileName}': {problem}; accepted as the host's image, refused for an image from someone else."));
                }
            }
        }

        // The image that could not be read may have failed because of a file it names (a VMDK extent the gate refused).
        ImmutableArray<ReferenceDecision> unread = DecisionsOf(chain, chain.Layers.Length);
        if (firstRejection is null && !unread.IsEmpty)
        {
            TrustReason reason = ReferencesReason(unread, unread[0].ReferrerFormatSource == FormatSource.Probed, posture);
            firstRejection = IsAcceptance(reason) ? null : reason;
            if (reason == TrustReason.ProbedWithUntrustedReferences)
            {
                findings.Add(new ChainFinding(
                    FindingCodes.ProbedFormatWithReferences,
                    chain.Layers.Length,
                    $"An image whose format was probed names {Describe([.. unread])}, and cannot be read without opening {(unread.Length == 1 ? "it" : "them")}; a guest could have written that header.")
                {
                    Reference = unread[0].Reference,
                });
            }
        }

        for (int i = 0; i + 1 < chain.Layers.Length; i++)
        {
            // The one fix qemu-img can make: record the backing format in the image above a probed layer. Only when
            // the probed layer passed the rule: recording the format of a header a guest may have forged (a probed
            // qcow2 naming untrusted files) would bless the attack. Where a store's catalog records the layer's
            // format, that is the format to record, and raw always may be: it names nothing.
            ChainLayer layer = chain.Layers[i];
            ChainLayer below = chain.Layers[i + 1];
            ImageFormat record = below.CatalogFormat ?? below.Format;
            if (below.FormatSource == FormatSource.Probed && layer.Backing is { } backing
                && (verdicts[i + 1].Decision == TrustDecision.Accepted || below.CatalogFormat == ImageFormat.Raw)
                && QemuImgRebaseCommand.CanRecordBackingFormat(layer.Format, record))
            {
                remediation.Add(QemuImgRebaseCommand.ToCommandLine(layer.Format, record, backing.StoredName, layer.FileName));
            }
        }

        TrustReason chainReason = firstRejection ?? EndingReason(chain) ?? verdicts[0].Reason;
        bool safe = firstRejection is null && IsAcceptance(chainReason) && chain.IsComplete && chain.Layers.Length > 0;
        return new TrustReport(chain, verdicts.MoveToImmutable(), findings.ToImmutable(), remediation.ToImmutable(), safe, chainReason);
    }

    private static TrustReason JudgeLayer(ChainLayer layer, ImmutableArray<ReferenceDecision> decisions, TrustPosture posture, bool local)
    {
        bool probed = layer.FormatSource == FormatSource.Probed;
        if (probed)
        {
            // Checked first: what a polyglot names depends on which header is believed.
            if (layer.Detection is { IsPolyglot: true })
            {
                return TrustReason.AmbiguousContent;
            }

            if (layer.Format == ImageFormat.Raw)
            {
                return TrustReason.ProbedRaw;
            }

            if (layer.References.IsEmpty)
            {
                return TrustReason.ProbedWithoutReferences;
            }
        }

        if (posture == TrustPosture.UntrustedImage && !layer.StructureProblems.IsEmpty)
        {
            return TrustReason.UnsafeStructure;
        }

        TrustReason referencesReason = ReferencesReason(decisions, probed, local ? posture : TrustPosture.UntrustedImage);
        if (!IsAcceptance(referencesReason))
        {
            return referencesReason;
        }

        return layer.FormatSource switch
        {
            FormatSource.Declared => TrustReason.FormatDeclared,
            FormatSource.Recorded => TrustReason.FormatRecorded,
            _ => TrustReason.ProbedWithTrustedReferences,
        };
    }

    /// <summary>
    /// What the files a layer names say about it: each must be present (opened), and, for a probed format or in the
    /// untrusted-image posture, trusted by location or digest. Returns <see cref="TrustReason.FormatDeclared"/> as
    /// "no objection".
    /// </summary>
    private static TrustReason ReferencesReason(ImmutableArray<ReferenceDecision> decisions, bool probed, TrustPosture posture)
    {
        bool mustBeTrusted = RequiresTrust(posture, probed);
        TrustReason? worst = null;
        foreach (ReferenceDecision decision in decisions)
        {
            // A URL that was opened without being trusted was only followed to describe the chain as qemu-img would.
            bool urlFollowedUntrusted = !decision.Reference.IsLocalPath && decision.Outcome == ReferenceOutcome.Opened && !IsTrusted(decision);
            if ((mustBeTrusted || urlFollowedUntrusted) && !IsTrusted(decision))
            {
                return probed ? TrustReason.ProbedWithUntrustedReferences : TrustReason.ReferenceNotTrusted;
            }

            TrustReason? reason = decision.Outcome switch
            {
                ReferenceOutcome.Opened => null,
                ReferenceOutcome.Missing => TrustReason.ReferenceMissing,
                ReferenceOutcome.Refused => probed ? TrustReason.ProbedWithUntrustedReferences : TrustReason.ReferenceNotTrusted,

                // The walk stopped above this file (too deep): the chain's ending speaks for it, unless the rule needed it trusted.
                ReferenceOutcome.NotAsked => mustBeTrusted ? (probed ? TrustReason.ProbedWithUntrustedReferences : TrustReason.ReferenceNotTrusted) : null,
                _ => TrustReason.ReferenceUnreachable,
            };
            worst ??= reason;
        }

        return worst ?? TrustReason.FormatDeclared;
    }

    private static void AddLayerFindings(ChainLayer layer, int index, TrustReason reason, ImmutableArray<ReferenceDecision> decisions, ImmutableArray<ChainFinding>.Builder findings)
    {
        if (reason == TrustReason.ProbedWithUntrustedReferences)
        {
            var untrusted = new List<ReferenceDecision>();
            foreach (ReferenceDecision decision in decisions)
            {
                if (!IsTrusted(decision))
                {
                    untrusted.Add(decision);
                }
            }

            findings.Add(new ChainFinding(
                FindingCodes.ProbedFormatWithReferences,
                index,
                $"The format of '{layer.FileName}' was probed as {layer.Format.GetQemuName()} and it names {Describe(untrusted)} that {(untrusted.Count == 1 ? "is" : "are")} not trusted; a guest could have written that header.")
            {
                Reference = untrusted.Count > 0 ? untrusted[0].Reference : null,
            });
        }
        else if (reason == TrustReason.UnsafeStructure)
        {
            foreach (string problem in layer.StructureProblems)
            {
                findings.Add(new ChainFinding(FindingCodes.MalformedHeader, index, $"'{layer.FileName}': {problem}; refused for an image from someone else."));
            }
        }
        else if (reason == TrustReason.AmbiguousContent)
        {
            findings.Add(new ChainFinding(
                FindingCodes.FormatMismatch,
                index,
                $"The format of '{layer.FileName}' was probed, and its content carries the signatures of several formats ({DescribeSignatures(layer)}); declare its format to use it."));
        }
    }

    private static TrustReason? EndingReason(ImageChain chain) => chain.Ending switch
    {
        ChainEnding.Complete => null,
        ChainEnding.Loop => TrustReason.BackingLoop,
        ChainEnding.TooDeep => TrustReason.ChainTooDeep,
        ChainEnding.Malformed => LastFindingIs(chain, FindingCodes.UnsupportedFeature) ? TrustReason.UnsupportedFeature : TrustReason.MalformedHeader,
        ChainEnding.Refused => TrustReason.ReferenceNotTrusted,
        _ => chain.Layers.IsEmpty ? TrustReason.ImageUnreadable : TrustReason.ReferenceMissing,
    };

    private static bool LastFindingIs(ImageChain chain, string code)
    {
        for (int i = chain.Findings.Length - 1; i >= 0; i--)
        {
            if (chain.Findings[i].Code is FindingCodes.UnsupportedFeature or FindingCodes.MalformedHeader)
            {
                return chain.Findings[i].Code == code;
            }
        }

        return false;
    }

    private static bool IsAcceptance(TrustReason reason) => reason is TrustReason.FormatDeclared or TrustReason.FormatRecorded
        or TrustReason.ProbedRaw or TrustReason.ProbedWithoutReferences or TrustReason.ProbedWithTrustedReferences;

    private static ImmutableArray<ReferenceDecision> DecisionsOf(ImageChain chain, int layer)
    {
        ImmutableArray<ReferenceDecision>.Builder? found = null;
        foreach (ReferenceDecision decision in chain.Decisions)
        {
            if (decision.LayerIndex == layer)
            {
                (found ??= ImmutableArray.CreateBuilder<ReferenceDecision>()).Add(decision);
            }
        }

        return found?.ToImmutable() ?? ImmutableArray<ReferenceDecision>.Empty;
    }

    private static string Describe(List<ReferenceDecision> decisions)
    {
        var text = new StringBuilder();
        foreach (ReferenceDecision decision in decisions)
        {
            text.Append(text.Length == 0 ? "" : ", ").Append('\'').Append(decision.Reference.StoredName).Append('\'');
        }

        return text.ToString();
    }

    private static string DescribeSignatures(ChainLayer layer)
    {
        var text = new StringBuilder();
        if (layer.Detection is { } detection)
        {
            foreach (Detection.FormatSignature signature in detection.Signatures)
            {
                text.Append(text.Length == 0 ? "" : "; ").Append(signature.Description);
            }
        }

        return text.ToString();
    }
}
