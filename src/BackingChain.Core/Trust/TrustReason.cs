namespace BackingChain.Trust;

/// <summary>
/// Why a layer, or a whole chain, was accepted or rejected. A layer's reason is one of the layer values; a chain's
/// (<see cref="TrustReport.Reason"/>) is its first rejected layer's, or what stopped the walk, or the top layer's
/// when the chain is safe.
/// </summary>
public enum TrustReason
{
    /// <summary>Accepted: the caller declared the format, and every file the layer names is present (and trusted, in the untrusted-image posture).</summary>
    FormatDeclared,

    /// <summary>Accepted: the image above recorded the format, and every file the layer names is present (and trusted, in the untrusted-image posture).</summary>
    FormatRecorded,

    /// <summary>Accepted: the format was probed as raw, which names no other file.</summary>
    ProbedRaw,

    /// <summary>Accepted: the format was probed, but the image names no other file.</summary>
    ProbedWithoutReferences,

    /// <summary>Accepted: the format was probed, and every file it names is present and trusted.</summary>
    ProbedWithTrustedReferences,

    /// <summary>Rejected: the format was probed and the image names files that are not trusted; a guest could have written that header.</summary>
    ProbedWithUntrustedReferences,

    /// <summary>Rejected: the format was probed and the content carries several formats' signatures (a polyglot), so what it is depends on who reads it.</summary>
    AmbiguousContent,

    /// <summary>
    /// Rejected (untrusted-image posture): the header has structure qemu accepts but qemu or the hypervisor could trip
    /// on, or that guest writes could change after the check (a metadata table overlapping the header or past the end
    /// of the file, LUKS without its header, a data file named without its feature bit).
    /// </summary>
    UnsafeStructure,

    /// <summary>Rejected (untrusted-image posture): the image names a file that is trusted neither by location nor by pinned digest.</summary>
    ReferenceNotTrusted,

    /// <summary>Rejected: the policy allowed a file the image names, and there is no such file.</summary>
    ReferenceMissing,

    /// <summary>Rejected: a file the image names could not be followed (a protocol or <c>json:</c> name, a Windows path) or opened (permission, not a regular file, I/O error).</summary>
    ReferenceUnreachable,

    /// <summary>Rejected (chain): the top image itself could not be opened.</summary>
    ImageUnreadable,

    /// <summary>Rejected (chain): a header is malformed or truncated.</summary>
    MalformedHeader,

    /// <summary>Rejected (chain): a header uses an incompatible feature, or a format, that the library (and qemu 7.2) does not support.</summary>
    UnsupportedFeature,

    /// <summary>Rejected (chain): a backing reference leads back into the chain.</summary>
    BackingLoop,

    /// <summary>Rejected (chain): the chain is deeper than the configured limit.</summary>
    ChainTooDeep,

    /// <summary>Rejected (upload): the upload's length differs from the length the sender announced.</summary>
    LengthMismatch,

    /// <summary>Rejected (upload): the reader needed bytes outside the retained head and tail windows, so the image could not be judged within the memory bound.</summary>
    MetadataOutsideWindow,

    /// <summary>Rejected (upload): the upload carried no byte at all, and empty uploads were not allowed (<see cref="Streaming.UploadInspectionOptions.AllowEmpty"/>).</summary>
    EmptyUpload,
}
