namespace BackingChain.Trust;

/// <summary>Why a layer was accepted or rejected.</summary>
public enum TrustReason
{
    /// <summary>Accepted: the caller declared the format.</summary>
    FormatDeclared,

    /// <summary>Accepted: the image above recorded the format.</summary>
    FormatRecorded,

    /// <summary>Accepted: the format was probed as raw, which names no other file.</summary>
    ProbedRaw,

    /// <summary>Accepted: the format was probed, but the image names no other file.</summary>
    ProbedWithoutReferences,

    /// <summary>Accepted: the format was probed, and every file it names is present and trusted.</summary>
    ProbedWithTrustedReferences,

    /// <summary>Rejected: the format was probed and the image names files that are missing or not trusted.</summary>
    ProbedWithUntrustedReferences,

    /// <summary>Rejected: a file the image needs (backing, data file, extent) is missing, refused, or a protocol name.</summary>
    ReferenceUnreachable,
}
