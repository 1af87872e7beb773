namespace BackingChain.Chain;

/// <summary>Why the gate let a reference be opened.</summary>
public enum TrustBasis
{
    /// <summary>Not allowed (see <see cref="ReferenceOutcome.Refused"/>), or never asked.</summary>
    None,

    /// <summary>It lies in a trusted location: under a trusted root once every symlink is resolved, or accepted by the policy's <see cref="Trust.IImageTrust"/>.</summary>
    Location,

    /// <summary>Its content matches a pinned SHA-256 digest.</summary>
    Digest,

    /// <summary>
    /// Not trusted, but named by an image whose format the administrator declared or an overlay recorded, which the
    /// <see cref="Trust.TrustPosture.Host"/> posture follows wherever it points.
    /// </summary>
    AuthenticFormat,

    /// <summary>
    /// Not trusted, but followed because the policy copies qemu-img's behaviour
    /// (<see cref="Trust.TrustPolicy.FollowUntrustedReferences"/>). Never makes a layer acceptable.
    /// </summary>
    FollowedUntrusted,
}
