namespace BackingChain.Streaming;

/// <summary>
/// Why an upload was accepted or rejected. When several rules reject an upload, the first in the order of
/// this enumeration's rejection values is reported; every finding is kept in
/// <see cref="UploadInspection.Findings"/>.
/// </summary>
public enum UploadVerdictReason
{
    /// <summary>Accepted: the caller declared the format raw, so the content is guest data and names nothing, whatever its first sector says.</summary>
    DeclaredRaw,

    /// <summary>Accepted: the caller declared the format and the image names no other file.</summary>
    DeclaredWithoutReferences,

    /// <summary>Accepted: the caller declared the format and every file the image names is trusted by the policy.</summary>
    DeclaredWithTrustedReferences,

    /// <summary>Accepted: the format was probed as raw.</summary>
    ProbedRaw,

    /// <summary>Accepted: the format was probed and the image names no other file.</summary>
    ProbedWithoutReferences,

    /// <summary>Rejected: the upload's length differs from the length announced in <see cref="UploadInspectionOptions.ExpectedLength"/> (a truncated or overlong upload).</summary>
    LengthMismatch,

    /// <summary>Rejected: no reader exists for the declared or probed format.</summary>
    UnsupportedFormat,

    /// <summary>Rejected: the reader needed bytes outside the retained head and tail windows, so the image could not be judged within the memory bound.</summary>
    MetadataOutsideWindow,

    /// <summary>Rejected: the image uses an incompatible feature that the reader (and qemu 7.2) does not know.</summary>
    UnsupportedFeature,

    /// <summary>Rejected: the header is malformed or truncated.</summary>
    MalformedHeader,

    /// <summary>Rejected: the format was probed, not declared, and the image names other files; a guest could have written that header (libvirt's rule).</summary>
    ProbedWithReferences,

    /// <summary>Rejected: the image names a file (backing file, data file, extent, parent) that the policy does not trust, or a protocol or <c>json:</c> name.</summary>
    ReferenceNotAllowed,

    /// <summary>Rejected: the format was probed, not declared, and the content carries the signatures of several formats (a polyglot), so what it is depends on who reads it.</summary>
    AmbiguousContent,
}
