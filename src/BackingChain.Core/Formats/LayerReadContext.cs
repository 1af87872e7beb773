using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

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

    // The scratch lists of the facts a reader makes (LayerFacts(context)): the walk copies what it keeps out of them
    // and hands them back (KeepScratch), so a walk of any depth makes them once. Fields of the one context a walk
    // keeps, rather than thread statics, which cost a TLS lookup on every use.
    private const int ScratchCapacity = 16;
    private List<StoredReference>? _scratchReferences;
    private List<string>? _scratchProblems;

    // The window of a remote layer (see ReadAsync): the bytes of the last request, where they start, and how many
    // the last request asked for. Filled buffers are never written again, so a slice handed out stays valid.
    private ReadOnlyMemory<byte> _window;
    private long _windowOffset;
    private int _windowRequest;

    /// <summary>The smallest request a remote layer's read makes: qemu's curl driver reads ahead 256 KiB.</summary>
    internal const int MinWindow = 64 * 1024;

    /// <summary>The largest request a remote layer's read makes to fill its window (a larger read is one request of its own).</summary>
    internal const int MaxWindow = 16 * 1024 * 1024;

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
        _window = default;
        _windowOffset = 0;
        _windowRequest = 0;
    }

    /// <summary>The scratch lists for a layer's facts (empty), or new lists when they are out.</summary>
    public (List<StoredReference> References, List<string> Problems) TakeScratch()
    {
        List<StoredReference> references = _scratchReferences ?? [];
        List<string> problems = _scratchProblems ?? [];
        _scratchReferences = null;
        _scratchProblems = null;
        return (references, problems);
    }

    /// <summary>Takes back lists from <see cref="TakeScratch"/>, emptied; a list a hostile image grew large is left to the collector.</summary>
    public void KeepScratch(List<StoredReference> references, List<string> problems)
    {
        if (_scratchReferences is null && references.Capacity <= ScratchCapacity)
        {
            references.Clear();
            _scratchReferences = references;
        }

        if (_scratchProblems is null && problems.Capacity <= ScratchCapacity)
        {
            problems.Clear();
            _scratchProblems = problems;
        }
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

    /// <summary>
    /// Whether reads of the layer are coalesced: a source that is neither a local file nor bytes in memory (http, or
    /// a caller's own source) pays per request, so its small reads are served from one window (see
    /// <see cref="ReadAsync"/>).
    /// </summary>
    internal bool Coalesces => !Source.Identity.IsLocal;

    /// <summary>
    /// Reads up to <paramref name="length"/> bytes at <paramref name="offset"/>, bounded by the limits and the image size.
    /// </summary>
    /// <remarks>
    /// A remote layer (<see cref="Coalesces"/>) is read through a window, as qemu's curl driver reads ahead: a read
    /// the window does not hold asks for at least <see cref="MinWindow"/> bytes, and for twice as many as last time
    /// when it continues forward from the window (up to <see cref="MaxWindow"/>). A table qemu reads in one (a qcow2
    /// snapshot table read entry by entry, a header whose extensions are found one by one) then costs a handful of
    /// requests, whatever count the header gives: the requests grow with the bytes read, which the limits bound,
    /// never with the number of entries.
    /// </remarks>
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

        if (Coalesces)
        {
            return await ReadWindowedAsync(offset, count, cancellationToken).ConfigureAwait(false);
        }

        byte[] buffer = new byte[count];
        int read = await Source.ReadAtAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
        return buffer.AsMemory(0, read);
    }

    /// <summary>A read of a remote layer, from the window or by one request that refills it; <paramref name="count"/> is within the image.</summary>
    private async ValueTask<ReadOnlyMemory<byte>> ReadWindowedAsync(long offset, int count, CancellationToken cancellationToken)
    {
        long windowEnd = _windowOffset + _window.Length;
        if (!_window.IsEmpty && offset >= _windowOffset && offset + count <= windowEnd)
        {
            return _window.Slice((int)(offset - _windowOffset), count);
        }

        // Forward from the window (within one more window's length): a table being walked, so ask for more each time.
        bool onward = !_window.IsEmpty && offset >= _windowOffset && offset - windowEnd <= _window.Length;
        int request = onward ? (int)Math.Min(2L * _windowRequest, MaxWindow) : MinWindow;
        int fetch = (int)Math.Min(Math.Max(count, request), Source.Length - offset);
        byte[] buffer = new byte[fetch];
        int done = 0;
        while (done < fetch)
        {
            int read = await Source.ReadAtAsync(offset + done, buffer.AsMemory(done), cancellationToken).ConfigureAwait(false);
            if (read <= 0)
            {
                break;
            }

            done += read;
        }

        if (fetch <= MaxWindow)
        {
            _window = buffer.AsMemory(0, done);
            _windowOffset = offset;
            _windowRequest = fetch;
        }

        return buffer.AsMemory(0, Math.Min(done, count));
    }
}
