namespace BackingChain.Chain;

/// <summary>How the walk down a chain ended.</summary>
public enum ChainEnding
{
    /// <summary>The last layer has no backing file: the chain is whole.</summary>
    Complete,

    /// <summary>An image the policy allowed to be opened does not exist or could not be opened (or the top image itself could not be).</summary>
    Missing,

    /// <summary>A backing reference leads back to an image already in the chain.</summary>
    Loop,

    /// <summary>The chain is deeper than the configured limit.</summary>
    TooDeep,

    /// <summary>The trust policy refused to open a reference, or no source can follow it; whether the file exists is not told.</summary>
    Refused,

    /// <summary>An image's header is malformed or uses an unsupported feature.</summary>
    Malformed,
}
