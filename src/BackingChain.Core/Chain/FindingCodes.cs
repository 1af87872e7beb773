namespace BackingChain.Chain;

/// <summary>The stable finding codes. They never change meaning between versions.</summary>
public static class FindingCodes
{
    /// <summary>A header is malformed.</summary>
    public const string MalformedHeader = "malformed-header";

    /// <summary>A header uses an incompatible feature the library (and qemu 7.2) does not know.</summary>
    public const string UnsupportedFeature = "unsupported-feature";

    /// <summary>A referenced image is refused by the policy (the same words whether or not it exists), or allowed and missing or unreadable ("No such file or directory").</summary>
    public const string UnreachableImage = "unreachable-image";

    /// <summary>A backing reference leads back into the chain.</summary>
    public const string BackingLoop = "backing-loop";

    /// <summary>The chain exceeds the depth limit.</summary>
    public const string ChainTooDeep = "chain-too-deep";

    /// <summary>A layer whose format was probed names other files that are not trusted.</summary>
    public const string ProbedFormatWithReferences = "probed-format-with-references";

    /// <summary>A reference uses a protocol or <c>json:</c> name, not followed without a source for it.</summary>
    public const string ProtocolReference = "protocol-reference";

    /// <summary>A qcow2 image keeps its data in an external data file.</summary>
    public const string ExternalDataFile = "external-data-file";

    /// <summary>A VMDK descriptor names extent files.</summary>
    public const string ExternalExtent = "external-extent";

    /// <summary>A declared or recorded format does not match the content.</summary>
    public const string FormatMismatch = "format-mismatch";

    /// <summary>A store scan could not list a folder of the store: nothing under it was judged.</summary>
    public const string UnreadableDirectory = "unreadable-directory";

    /// <summary>A store scan could not open a file of the store (permission, I/O error, a name that is not UTF-8): it was not judged.</summary>
    public const string UnreadableFile = "unreadable-file";

    /// <summary>A store scan met a file or folder whose path is longer than <c>PATH_MAX</c>: neither it nor anything under it was judged.</summary>
    public const string PathTooLong = "path-too-long";

    /// <summary>A store scan met a symbolic link: it is not followed, so what it points to is not judged under that name.</summary>
    public const string SymbolicLink = "symbolic-link";

    /// <summary>A store scan found another thing at a name than it listed there (a symbolic link, a FIFO, another file): it was not read.</summary>
    public const string ChangedDuringScan = "changed-during-scan";
}
