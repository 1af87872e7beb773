using System;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Sources;

namespace BackingChain.Formats;

/// <summary>What a format reader gets: the source and its first bytes, already read once for the probe.</summary>
/// <remarks>
/// A walk keeps one context and points it at each layer in turn (<see cref="Reset"/>), so reading a layer allocates
/// nothing of its own; a reader must not keep the context past its <c>ReadAsync</c>.
/// </remarks>
internal sealed class LayerReadContext
{
    private readonly Func<StoredReference, CancellationToken, ValueTask<IImageSource?>>? _openReference;
    private readonly ILayerReferenceOpener? _opener;

    public LayerReadContext(IImageSource source, ReadOnlyMemory<byte> head, Func<StoredReference, CancellationToken, ValueTask<IImageSource?>>? openReference = null)
    {
        Source = source;
        Head = head;
        _openReference = openReference;
    }

    /// <summary>A context for a walk: <see cref="Reset"/> before each layer.</summary>
    public LayerReadContext(ILayerReferenceOpener opener)
    {
        Source = null!;
        _opener = opener;
    }

    /// <summary>Points the context at the next layer.</summary>
    public void Reset(IImageSource source, ReadOnlyMemory<byte> head, FormatSource formatSource, int index)
    {
        Source = source;
        Head = head;
        FormatSource = formatSource;
        Index = index;
    }

    /// <summary>
    /// Opens a file this image names and needs in order to be described (a VMDK extent, for example), through
    /// the resolver's trust gate. Returns <see langword="null"/> when it is missing, refused or not a local name;
    /// the resolver then records the finding. The resolver owns and disposes the source.
    /// </summary>
    public ValueTask<IImageSource?> OpenReferenceAsync(StoredReference reference, CancellationToken cancellationToken) =>
        _opener is not null ? _opener.OpenReferenceAsync(this, reference, cancellationToken)
        : _openReference is not null ? _openReference(reference, cancellationToken)
        : new ValueTask<IImageSource?>((IImageSource?)null);

    public IImageSource Source { get; private set; }

    /// <summary>The first bytes of the image (up to <see cref="ImageReadLimits.HeadLength"/>).</summary>
    public ReadOnlyMemory<byte> Head { get; private set; }

    /// <summary>Where the layer's format came from (what the gate asks of the files it names).</summary>
    public FormatSource FormatSource { get; private set; }

    /// <summary>The layer's position in the chain, top 0.</summary>
    public int Index { get; private set; }

    /// <summary>Whether <see cref="Head"/> holds the whole image.</summary>
    public bool HeadIsWholeImage => Head.Length >= Source.Length;

    /// <summary>Reads up to <paramref name="length"/> bytes at <paramref name="offset"/>, bounded by the limits and the image size.</summary>
    public async ValueTask<ReadOnlyMemory<byte>> ReadAsync(long offset, int length, CancellationToken cancellationToken)
    {
        if (offset < 0 || offset >= Source.Length || length <= 0)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        if (length > ImageReadLimits.MaxMetadataRead)
        {
            throw new ImageFormatException(HeaderError.InvalidSize, $"Refusing to read {length} bytes of metadata (limit {ImageReadLimits.MaxMetadataRead}).");
        }

        int count = (int)Math.Min(length, Source.Length - offset);
        if (offset == 0 && count <= Head.Length)
        {
            return Head[..count];
        }

        if (Source is IRetainedImageSource retained)
        {
            return retained.GetRetained(offset, count);
        }

        byte[] buffer = new byte[count];
        int read = await Source.ReadAtAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
        return buffer.AsMemory(0, read);
    }
}
