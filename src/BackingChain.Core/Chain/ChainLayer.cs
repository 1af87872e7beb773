using System.Collections.Immutable;
using BackingChain.Sources;

namespace BackingChain.Chain;

/// <summary>One image of a chain: its format, where that format came from, its header facts and its references.</summary>
public sealed class ChainLayer
{
    /// <summary>The name the image was opened by (qemu's <c>filename</c>).</summary>
    public required string Filename { get; init; }

    /// <summary>The format the image was read as.</summary>
    public required ImageFormat Format { get; init; }

    /// <summary>Where <see cref="Format"/> came from.</summary>
    public required FormatSource FormatSource { get; init; }

    /// <summary>What qemu's probe says the content is, whatever format was used.</summary>
    public ImageFormat ProbedFormat { get; init; }

    /// <summary>The storage identity, used for loop detection.</summary>
    public ImageSourceIdentity Identity { get; init; }

    /// <summary>The guest-visible size in bytes (qemu's <c>virtual-size</c>).</summary>
    public long VirtualSize { get; init; }

    /// <summary>Bytes allocated on storage (qemu's <c>actual-size</c>), when known.</summary>
    public long? ActualSize { get; init; }

    /// <summary>The cluster or block size, when the format has one (qemu's <c>cluster-size</c>).</summary>
    public int? ClusterSize { get; init; }

    /// <summary>The dirty flag, for formats whose driver reports one (absent otherwise, as in qemu).</summary>
    public bool? DirtyFlag { get; init; }

    /// <summary>Whether the image is encrypted.</summary>
    public bool Encrypted { get; init; }

    /// <summary>Every file the image names, backing file first.</summary>
    public ImmutableArray<ImageReference> References { get; init; } = ImmutableArray<ImageReference>.Empty;

    /// <summary>Format-specific facts, when the format has them.</summary>
    public FormatSpecificInfo? FormatSpecific { get; init; }

    /// <summary>The SHA-256 of the whole image, computed only when the trust policy pins digests.</summary>
    public string? Sha256 { get; init; }

    /// <summary>Whether the image's location is trusted by the policy (a trusted root or the callback).</summary>
    public bool IsLocationTrusted { get; init; }

    /// <summary>The backing reference (backing file or VMDK parent), if the image has one.</summary>
    public ImageReference? Backing
    {
        get
        {
            foreach (ImageReference reference in References)
            {
                if (reference.Role is ReferenceRole.BackingFile or ReferenceRole.VmdkParent
                    or ReferenceRole.VhdParentLocator or ReferenceRole.VhdxParentLocator)
                {
                    return reference;
                }
            }

            return null;
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Filename} ({Format.GetQemuName()}, {FormatSource})";
}
