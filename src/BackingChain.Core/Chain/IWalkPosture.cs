namespace BackingChain.Chain;

/// <summary>
/// What a chain keeps of the policy its walk was taken under: the posture, as a fact. The trust layer's policy
/// provides it, so that the model names no type of the layer that judges it.
/// </summary>
internal interface IWalkPosture
{
    /// <summary>Gets whether the walk read the image in the untrusted-image posture (the header is the attacker's).</summary>
    bool ReadsUntrustedImage { get; }
}
