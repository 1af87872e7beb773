namespace BackingChain.Chain;

/// <summary>
/// The gate's decision on one file a layer names, recorded as data when the chain was walked: whether the policy
/// allowed it and on what basis, what opening it found, and the canonical path and digest when they were computed.
/// The verdict is a function of these records; nothing is looked up again when a chain is judged.
/// </summary>
public sealed class ReferenceDecision
{
    internal ReferenceDecision(int layer, FormatSource referrerFormatSource, ImageReference reference, ReferenceOutcome outcome, TrustBasis basis, string? canonicalPath, string? sha256, string? detail)
    {
        LayerIndex = layer;
        ReferrerFormatSource = referrerFormatSource;
        Reference = reference;
        Outcome = outcome;
        Basis = basis;
        CanonicalPath = canonicalPath;
        Sha256 = sha256;
        Detail = detail;
    }

    /// <summary>Gets the index of the layer that names the file (0 = top). It may equal the number of layers when the layer could not be read because of this reference.</summary>
    public int LayerIndex { get; }

    /// <summary>Gets where the format of the image that names the file came from: what the gate's rule looked at.</summary>
    public FormatSource ReferrerFormatSource { get; }

    /// <summary>Gets the reference as stored and classified.</summary>
    public ImageReference Reference { get; }

    /// <summary>Gets what happened at the gate.</summary>
    public ReferenceOutcome Outcome { get; }

    /// <summary>Gets why the gate let it be opened, or <see cref="TrustBasis.None"/>.</summary>
    public TrustBasis Basis { get; }

    /// <summary>Gets whether the policy let the file be opened (it may still have been missing or unreadable).</summary>
    public bool IsAllowed => Basis != TrustBasis.None;

    /// <summary>Gets the canonical path (every symlink resolved) when the policy needed it, or <see langword="null"/>.</summary>
    public string? CanonicalPath { get; }

    /// <summary>Gets the SHA-256 (lower-case hex) of the file when a pinned digest was checked and matched, or <see langword="null"/>.</summary>
    public string? Sha256 { get; }

    /// <summary>Gets a short account of an open failure ("No such file or directory", "Permission denied"), or <see langword="null"/>.</summary>
    public string? Detail { get; }

    /// <inheritdoc/>
    public override string ToString() => $"layer {LayerIndex}: {Reference} {Outcome} ({Basis})";
}
