namespace BackingChain.Chain;

/// <summary>How the walk down a chain ended.</summary>
public enum ChainEnding
{
    /// <summary>The last layer has no backing file: the chain is whole.</summary>
    Complete,

    /// <summary>An image could not be found or opened ("missing" and "not allowed" look the same to the caller).</summary>
    Missing,

    /// <summary>A backing reference leads back to an image already in the chain.</summary>
    Loop,

    /// <summary>The chain is deeper than the configured limit.</summary>
    TooDeep,

    /// <summary>The trust policy refused to open a reference (reported to callers as <see cref="Missing"/> in findings).</summary>
    Refused,

    /// <summary>An image's header is malformed or uses an unsupported feature.</summary>
    Malformed,
}
