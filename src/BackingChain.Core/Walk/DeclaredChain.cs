using System.Collections.Immutable;
using BackingChain.Chain;

namespace BackingChain.Walk;

/// <summary>
/// A chain whose upper layers the caller spells out, top first, each with its format (libvirt's <c>&lt;disk&gt;</c>
/// and nested <c>&lt;backingStore&gt;</c>). qemu is then given each layer's backing explicitly: the backing name a
/// spelled-out layer's header records is not opened, the next spelled-out layer is, with the format given (never
/// probed). Below the last one the walk goes on from what its header records, unless the chain is terminated.
/// </summary>
/// <remarks>
/// The spelled-out layers below the top are references of the layer above, put to the same gate as any backing
/// file. The walk notes here what each spelled-out layer's header records as its backing file, so the caller can
/// compare it with what it spelled out; an instance serves one walk.
/// </remarks>
internal sealed class DeclaredChain
{
    private readonly ImageReference?[] _recordedBacking;

    /// <param name="layers">The layers, top first; <see cref="ImageReference.RecordedFormat"/> is the format given (qemu's name).</param>
    /// <param name="isTerminated">Whether nothing lies below the last layer.</param>
    public DeclaredChain(ImmutableArray<ImageReference> layers, bool isTerminated)
    {
        Layers = layers;
        IsTerminated = isTerminated;
        _recordedBacking = new ImageReference?[layers.Length];
    }

    public ImmutableArray<ImageReference> Layers { get; }

    public bool IsTerminated { get; }

    /// <summary>What the header of the spelled-out layer at <paramref name="index"/> records as its backing file, once the walk has read it.</summary>
    public ImageReference? RecordedBacking(int index) => _recordedBacking[index];

    /// <summary>Whether <paramref name="reference"/> is one of the spelled-out layers: its format is declared, not recorded.</summary>
    public bool Declares(ImageReference reference) => Layers.Contains(reference);

    /// <summary>
    /// The files the layer at <paramref name="index"/> makes qemu open: what its header names, with the backing file
    /// replaced by the next spelled-out layer (or dropped at a terminated end). Unchanged from the last layer of an
    /// open chain down.
    /// </summary>
    public ImmutableArray<ImageReference> Apply(int index, ImmutableArray<ImageReference> recorded, ImageReference? recordedBacking)
    {
        if (index >= Layers.Length)
        {
            return recorded;
        }

        _recordedBacking[index] = recordedBacking;
        bool last = index == Layers.Length - 1;
        if (last && !IsTerminated)
        {
            return recorded;
        }

        ImageReference? next = last ? null : Layers[index + 1];
        var references = ImmutableArray.CreateBuilder<ImageReference>(recorded.Length + 1);
        foreach (ImageReference reference in recorded)
        {
            if (ReferenceEquals(reference, recordedBacking))
            {
                if (next is not null)
                {
                    references.Add(next);
                    next = null;
                }

                continue;
            }

            references.Add(reference);
        }

        if (next is not null)
        {
            references.Add(next);
        }

        return references.ToImmutable();
    }
}
