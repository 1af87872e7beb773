using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>
/// The stable, lower-case spellings of the library's enumerations, as the JSON writers, the command-line tool and
/// log and metric tags print them. They never change once shipped, whatever happens to the enumerations' member names.
/// </summary>
public static class StableNames
{
    /// <summary>The stable spelling of a format source: <c>declared</c>, <c>recorded</c> or <c>probed</c>.</summary>
    /// <param name="source">The source.</param>
    /// <returns>The name.</returns>
    public static string GetStableName(this FormatSource source) => source switch
    {
        FormatSource.Declared => "declared",
        FormatSource.Recorded => "recorded",
        _ => "probed",
    };

    /// <summary>The stable spelling of a reason, e.g. <c>probed-with-untrusted-references</c>.</summary>
    /// <param name="reason">The reason.</param>
    /// <returns>The name.</returns>
    public static string GetStableName(this TrustReason reason) => reason switch
    {
        TrustReason.FormatDeclared => "format-declared",
        TrustReason.FormatRecorded => "format-recorded",
        TrustReason.ProbedRaw => "probed-raw",
        TrustReason.ProbedWithoutReferences => "probed-without-references",
        TrustReason.ProbedWithTrustedReferences => "probed-with-trusted-references",
        TrustReason.ProbedWithUntrustedReferences => "probed-with-untrusted-references",
        TrustReason.AmbiguousContent => "ambiguous-content",
        TrustReason.UnsafeStructure => "unsafe-structure",
        TrustReason.ReferenceNotTrusted => "reference-not-trusted",
        TrustReason.ReferenceMissing => "reference-missing",
        TrustReason.ReferenceUnreachable => "reference-unreachable",
        TrustReason.ImageUnreadable => "image-unreadable",
        TrustReason.MalformedHeader => "malformed-header",
        TrustReason.UnsupportedFeature => "unsupported-feature",
        TrustReason.BackingLoop => "backing-loop",
        TrustReason.ChainTooDeep => "chain-too-deep",
        TrustReason.LengthMismatch => "length-mismatch",
        TrustReason.EmptyUpload => "empty-upload",
        _ => "metadata-outside-window",
    };

    /// <summary>The stable spelling of a reference role, e.g. <c>backing-file</c>.</summary>
    /// <param name="role">The role.</param>
    /// <returns>The name.</returns>
    public static string GetStableName(this ReferenceRole role) => role switch
    {
        ReferenceRole.BackingFile => "backing-file",
        ReferenceRole.ExternalDataFile => "data-file",
        _ => "extent",
    };

    /// <summary>The stable spelling of a gate outcome, e.g. <c>opened</c> or <c>refused</c>.</summary>
    /// <param name="outcome">The outcome.</param>
    /// <returns>The name.</returns>
    public static string GetStableName(this ReferenceOutcome outcome) => outcome switch
    {
        ReferenceOutcome.Opened => "opened",
        ReferenceOutcome.Missing => "missing",
        ReferenceOutcome.Unreadable => "unreadable",
        ReferenceOutcome.Refused => "refused",
        ReferenceOutcome.NotFollowed => "not-followed",
        _ => "not-asked",
    };

    /// <summary>The stable spelling of what let a file be opened, e.g. <c>location</c>, or <c>none</c>.</summary>
    /// <param name="basis">The basis.</param>
    /// <returns>The name.</returns>
    public static string GetStableName(this TrustBasis basis) => basis switch
    {
        TrustBasis.Location => "location",
        TrustBasis.Digest => "digest",
        TrustBasis.AuthenticFormat => "authentic-format",
        TrustBasis.FollowedUntrusted => "followed-untrusted",
        _ => "none",
    };

    /// <summary>The stable spelling of a posture: <c>host</c> or <c>untrusted-image</c>.</summary>
    /// <param name="posture">The posture.</param>
    /// <returns>The name.</returns>
    public static string GetStableName(this TrustPosture posture) => posture == TrustPosture.Host ? "host" : "untrusted-image";

    /// <summary>The stable spelling of a verdict: <c>accepted</c> or <c>rejected</c>.</summary>
    /// <param name="decision">The decision.</param>
    /// <returns>The name.</returns>
    public static string GetStableName(this TrustDecision decision) => decision == TrustDecision.Accepted ? "accepted" : "rejected";
}
