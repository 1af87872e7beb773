using System.Collections.Immutable;
using BackingChain.Detection;

namespace BackingChain.Chain;

/// <summary>One image of a chain: its format, where that format came from, its header facts and its references. Made only by the resolver and the upload gate.</summary>
public sealed class ChainLayer
{
    internal ChainLayer()
    {
    }

    /// <summary>The name the image was opened by (qemu's <c>filename</c>).</summary>
    public string FileName { get; internal init; } = "";

    /// <summary>The format the image was read as.</summary>
    public ImageFormat Format { get; internal init; }

    /// <summary>Where <see cref="Format"/> came from.</summary>
    public FormatSource FormatSource { get; internal init; }

    /// <summary>What qemu's probe says the content is, whatever format was used.</summary>
    public ImageFormat ProbedFormat { get; internal init; }

    /// <summary>The storage identity, used for loop detection.</summary>
    public ImageSourceIdentity Identity { get; internal init; }

    /// <summary>The guest-visible size in bytes (qemu's <c>virtual-size</c>).</summary>
    public long VirtualSize { get; internal init; }

    /// <summary>Bytes allocated on storage (qemu's <c>actual-size</c>), when known.</summary>
    public long? ActualSize { get; internal init; }

    /// <summary>The cluster or block size, when the format has one (qemu's <c>cluster-size</c>).</summary>
    public int? ClusterSize { get; internal init; }

    /// <summary>The dirty flag, for formats whose driver reports one (absent otherwise, as in qemu).</summary>
    public bool? DirtyFlag { get; internal init; }

    /// <summary>Whether the image is encrypted.</summary>
    public bool Encrypted { get; internal init; }

    /// <summary>Every file the image names, backing file first.</summary>
    public ImmutableArray<ImageReference> References { get; internal init; } = ImmutableArray<ImageReference>.Empty;

    /// <summary>Format-specific facts, when the format has them.</summary>
    public FormatSpecificInfo? FormatSpecific { get; internal init; }

    /// <summary>
    /// Every format signature in the image's head and tail, computed for layers whose format was probed (a probed
    /// image showing several formats is ambiguous and refused); <see langword="null"/> for declared and recorded formats.
    /// </summary>
    public ThoroughDetection? Detection { get; internal init; }

    /// <summary>Structure the untrusted-image posture refuses (see the format readers), each naming the check; usually empty.</summary>
    internal ImmutableArray<string> StructureProblems { get; init; } = ImmutableArray<string>.Empty;

    /// <summary>The format a store's catalog records for this image (<c>ImageChainResolverOptions.FormatCatalog</c>), when the walk reached it through a backing name and the catalog has it.</summary>
    internal ImageFormat? CatalogFormat { get; init; }

    /// <summary>The backing reference (backing file or VMDK parent), if the image has one.</summary>
    public ImageReference? Backing
    {
        get
        {
            foreach (ImageReference reference in References)
            {
                if (reference.Role == ReferenceRole.BackingFile)
                {
                    return reference;
                }
            }

            return null;
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{FileName} ({Format.GetQemuName()}, {FormatSource})";
}
