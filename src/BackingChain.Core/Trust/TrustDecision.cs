namespace BackingChain.Trust;

/// <summary>Whether a layer may be used.</summary>
public enum TrustDecision
{
    /// <summary>The layer may be used.</summary>
    Accepted,

    /// <summary>The layer must not be used.</summary>
    Rejected,
}
