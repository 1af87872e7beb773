using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Detection;
using BackingChain.Formats;
using BackingChain.Internal;
using BackingChain.Sources;
using Microsoft.Extensions.Logging;

using BackingChain.Chain;

namespace BackingChain.Walk;

/// <summary>
/// Reads one layer for the walk, by one path: head (and tail, for thorough detection), detection, the format's
/// reader, and the containment of what goes wrong on the way — a read error is the layer's finding, a reader's
/// unexpected exception a malformed-header finding, never an exception out of the walk.
/// </summary>
/// <remarks>
/// One reader serves every layer of a walk: its head buffer and reader context are made once. The path completes
/// without awaiting whenever it can: a local file's head is read with synchronous <c>pread</c>s (a source that
/// <see cref="IKnownImageSource.ReadsSynchronously">reads synchronously</see>), and a reader that finds the header in
/// the head completes at once, so a plain qcow2 chain is read with no state machine per layer. A stage that truly
/// waits continues in an async twin of itself that ends in the same handling (<see cref="HeadFailed"/>,
/// <see cref="Contain"/>, <see cref="Conclude"/>).
/// </remarks>
internal sealed class LayerReader : IDisposable
{
    // The head of the layer being read, and behind it room for the tail that thorough detection also looks at.
    private readonly byte[] _head = ArrayPool<byte>.Shared.Rent(ImageFormatDetector.ThoroughHeadLength + ImageFormatDetector.ThoroughTailLength);

    private readonly PooledList<ChainFinding> _findings;
    private readonly List<ReferenceDecision> _pending;
    private readonly ThoroughDetection? _topDetection;
    private readonly LayerMemo? _memo;
    private readonly ILogger _logger;
    private readonly Func<ImageFormat, IImageFormatReader?> _readers;

    /// <summary>Creates the reader of one walk.</summary>
    /// <param name="opener">Where a format reader's requests for the files an image names go (the walk's gate).</param>
    /// <param name="findings">The walk's findings, which the reader adds to.</param>
    /// <param name="pending">The gate's decisions for the layer being read, taken while its reader asked for files.</param>
    /// <param name="topDetection">The upload gate's detection of the top image, or <see langword="null"/>.</param>
    /// <param name="memo">The layers a store scan's walks share, or <see langword="null"/>.</param>
    /// <param name="logger">Where reader faults are logged.</param>
    /// <param name="readers">The format readers (<see cref="FormatReaders.Get"/>; a test passes its own).</param>
    public LayerReader(
        ILayerReferenceOpener opener, PooledList<ChainFinding> findings, List<ReferenceDecision> pending, ThoroughDetection? topDetection, LayerMemo? memo, ILogger logger,
        Func<ImageFormat, IImageFormatReader?>? readers = null)
    {
        _findings = findings;
        _pending = pending;
        _topDetection = topDetection;
        _memo = memo;
        _logger = logger;
        _readers = readers ?? FormatReaders.Get;
        Context = new LayerReadContext(opener);
    }

    /// <summary>The one reader context of the walk (see <see cref="LayerReadContext.Reset"/>); facts made in it are recycled into it.</summary>
    public LayerReadContext Context { get; }

    /// <summary>How many times a reader threw on bytes it failed to validate (a reader bug every time).</summary>
    public int ReaderFaults { get; private set; }

    /// <summary>
    /// Reads a layer, or takes the read another walk of the same scan made of the same file, name and format. Only
    /// a read that produced no finding and opened no other file is shared: those are pure functions of the bytes and
    /// the name, so the chain built from a shared read is the one a walk of its own would have built.
    /// </summary>
    public ValueTask<LayerRead> ReadAsync(IImageSource source, ImageFormat? format, FormatSource formatSource, int index, CancellationToken cancellationToken)
    {
        // Not an async method itself: a walk outside a store scan goes straight to the read, with no state machine of
        // its own per layer.
        return _memo is null || _topDetection is not null || source is not IKnownImageSource { ChangeStamp: long stamp }
            ? ReadHeadAsync(source, format, formatSource, index, cancellationToken)
            : ReadSharedAsync(source, stamp, format, formatSource, index, cancellationToken);
    }

    public void Dispose() => ArrayPool<byte>.Shared.Return(_head);

    private async ValueTask<LayerRead> ReadSharedAsync(
        IImageSource source, long stamp, ImageFormat? format, FormatSource formatSource, int index, CancellationToken cancellationToken)
    {
        var key = new LayerMemo.Key(source.Identity, stamp, source.Length, source.Name, format);
        Task<LayerMemo.Layer?>? shared = _memo!.Claim(key, out TaskCompletionSource<LayerMemo.Layer?>? claim);
        if (shared is not null)
        {
            LayerMemo.Layer? layer = await shared.WaitAsync(cancellationToken).ConfigureAwait(false);
            return layer is not null
                ? new LayerRead(layer.Facts, layer.Used, layer.Probed, layer.Detection, null, null)
                : await ReadHeadAsync(source, format, formatSource, index, cancellationToken).ConfigureAwait(false);
        }

        LayerMemo.Layer? read = null;
        try
        {
            int findings = _findings.Count;
            int pending = _pending.Count;
            LayerRead result = await ReadHeadAsync(source, format, formatSource, index, cancellationToken).ConfigureAwait(false);
            if (result.Facts is { } facts && _findings.Count == findings && _pending.Count == pending)
            {
                read = new LayerMemo.Layer(facts, result.Used, result.Probed, result.Detection);
            }

            return result;
        }
        finally
        {
            LayerMemo.Complete(claim!, read);
        }
    }

    /// <summary>The head stage: reads the head (and tail) and detects, then hands over to the format stage.</summary>
    private ValueTask<LayerRead> ReadHeadAsync(IImageSource source, ImageFormat? format, FormatSource formatSource, int index, CancellationToken cancellationToken)
    {
        bool detect = Detects(formatSource, index);
        (int Head, int Tail) read;
        try
        {
            ValueTask<(int Head, int Tail)> reading = ReadHeadAndTail(source, detect, cancellationToken);
            if (!reading.IsCompletedSuccessfully)
            {
                return AwaitHeadAsync(reading, source, format, formatSource, index, detect, cancellationToken);
            }

            read = reading.Result;
        }
        catch (Exception ex) when (IsUnreadable(ex))
        {
            return new ValueTask<LayerRead>(HeadFailed(source, index, ex));
        }

        return ReadFormat(source, format, formatSource, index, detect, read, cancellationToken);
    }

    private async ValueTask<LayerRead> AwaitHeadAsync(
        ValueTask<(int Head, int Tail)> reading, IImageSource source, ImageFormat? format, FormatSource formatSource, int index, bool detect, CancellationToken cancellationToken)
    {
        (int Head, int Tail) read;
        try
        {
            read = await reading.ConfigureAwait(false);
        }
        catch (Exception ex) when (IsUnreadable(ex))
        {
            return HeadFailed(source, index, ex);
        }

        return await ReadFormat(source, format, formatSource, index, detect, read, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads what a layer needs before its reader runs into the head buffer: the head, and for a layer that gets
    /// thorough detection (see <see cref="Detects"/>: the probed-format rule must know whether the content is also
    /// another format, a polyglot) the head as far as that detection looks plus the tail, which lands behind it.
    /// </summary>
    private ValueTask<(int Head, int Tail)> ReadHeadAndTail(IImageSource source, bool detect, CancellationToken cancellationToken)
    {
        long length = source.Length;
        int headLength = (int)Math.Min(detect ? ImageFormatDetector.ThoroughHeadLength : ImageReadLimits.HeadLength, length);
        int tailLength = detect ? (int)Math.Min(ImageFormatDetector.ThoroughTailLength, length) : 0;
        if (source is not IKnownImageSource { ReadsSynchronously: true } file)
        {
            return ReadHeadAndTailAsync(source, headLength, tailLength, cancellationToken);
        }

        int head = file.ReadAt(0, _head.AsSpan(0, headLength));
        int tail = 0;
        if (detect)
        {
            // As the source's asynchronous read would: a cancelled walk reads no further.
            cancellationToken.ThrowIfCancellationRequested();
            tail = file.ReadAt(length - tailLength, _head.AsSpan(ImageFormatDetector.ThoroughHeadLength, tailLength));
        }

        return new ValueTask<(int Head, int Tail)>((head, tail));
    }

    private async ValueTask<(int Head, int Tail)> ReadHeadAndTailAsync(IImageSource source, int headLength, int tailLength, CancellationToken cancellationToken)
    {
        int head = await ReadFullyAsync(source, 0, _head.AsMemory(0, headLength), cancellationToken).ConfigureAwait(false);
        int tail = tailLength > 0
            ? await ReadFullyAsync(source, source.Length - tailLength, _head.AsMemory(ImageFormatDetector.ThoroughHeadLength, tailLength), cancellationToken).ConfigureAwait(false)
            : 0;
        return (head, tail);
    }

    private static async ValueTask<int> ReadFullyAsync(IImageSource source, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = await source.ReadAtAsync(offset + total, buffer[total..], cancellationToken).ConfigureAwait(false);
            if (read <= 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    /// <summary>Whether this layer gets thorough detection: a probed format, unless the upload gate made it already.</summary>
    private bool Detects(FormatSource formatSource, int index) => formatSource == FormatSource.Probed && !(index == 0 && _topDetection is not null);

    /// <summary>What makes a layer's bytes unreadable rather than its reader faulty.</summary>
    private static bool IsUnreadable(Exception ex) => ex is IOException or UnauthorizedAccessException or ImageFormatException;

    private LayerRead HeadFailed(IImageSource source, int index, Exception ex)
    {
        string message = $"Could not read '{source.Name}': {ErrorWords.Describe(ex)}";
        bool malformed = ex is ImageFormatException;
        _findings.Add(new ChainFinding(malformed ? FindingCodes.MalformedHeader : FindingCodes.UnreachableImage, index, message));
        return new LayerRead(null, ImageFormat.Unknown, ImageFormat.Unknown, null, malformed ? ChainEnding.Malformed : ChainEnding.Missing, message);
    }

    /// <summary>
    /// The format stage: probes the head read into the buffer (thorough detection when the layer gets it, the upload
    /// gate's own for its top) and has the format's reader describe the layer.
    /// </summary>
    private ValueTask<LayerRead> ReadFormat(
        IImageSource source, ImageFormat? format, FormatSource formatSource, int index, bool detect, (int Head, int Tail) read, CancellationToken cancellationToken)
    {
        ThoroughDetection? detection;
        int headLength = read.Head;
        if (detect)
        {
            detection = ImageFormatDetector.DetectThorough(_head.AsSpan(0, read.Head), _head.AsSpan(ImageFormatDetector.ThoroughHeadLength, read.Tail), source.Length, source.Name);
            headLength = Math.Min(read.Head, ImageReadLimits.HeadLength);
        }
        else
        {
            detection = formatSource == FormatSource.Probed ? _topDetection : null;
        }

        ReadOnlyMemory<byte> head = _head.AsMemory(0, headLength);
        ImageFormat probed = ImageFormatDetector.Detect(head.Span, source.Name, source.Length);
        ImageFormat used = format ?? probed;

        IImageFormatReader? reader = _readers(used);
        if (reader is null)
        {
            string message = $"Could not open '{source.Name}': format '{used.GetQemuName()}' is not supported";
            _findings.Add(new ChainFinding(FindingCodes.UnsupportedFeature, index, message));
            return new ValueTask<LayerRead>(new LayerRead(null, used, probed, detection, ChainEnding.Malformed, message));
        }

        LayerFacts facts;
        try
        {
            Context.Reset(source, head, formatSource, index);
            ValueTask<LayerFacts> reading = reader.ReadAsync(Context, cancellationToken);
            if (!reading.IsCompletedSuccessfully)
            {
                return AwaitFormatAsync(reading, source, formatSource, index, used, probed, detection);
            }

            facts = reading.Result;
        }
        catch (Exception ex) when (IsContained(ex))
        {
            return new ValueTask<LayerRead>(Contain(ex, source, formatSource, index, used, probed, detection));
        }

        return new ValueTask<LayerRead>(Conclude(source, formatSource, index, facts, used, probed, detection));
    }

    private async ValueTask<LayerRead> AwaitFormatAsync(
        ValueTask<LayerFacts> reading, IImageSource source, FormatSource formatSource, int index, ImageFormat used, ImageFormat probed, ThoroughDetection? detection)
    {
        LayerFacts facts;
        try
        {
            facts = await reading.ConfigureAwait(false);
        }
        catch (Exception ex) when (IsContained(ex))
        {
            return Contain(ex, source, formatSource, index, used, probed, detection);
        }

        return Conclude(source, formatSource, index, facts, used, probed, detection);
    }

    /// <summary>What a reader may throw that the walk turns into the layer's finding; anything else is not the image's doing.</summary>
    private static bool IsContained(Exception ex) =>
        ex is ImageFormatException or IOException or UnauthorizedAccessException
        || ex is ArgumentException or IndexOutOfRangeException or OverflowException or InvalidOperationException or DivideByZeroException;

    /// <summary>
    /// What a reader's exception makes of the layer: a format error is a malformed (or unsupported) header, an I/O
    /// error an unreachable image, and anything else a reader bug. Defence in depth: a reader that trips over bytes
    /// it failed to validate must still give the caller a finding for this hostile image, never an exception out of
    /// the walk. Counted, so that the tests and the fuzz harness can see that it fired.
    /// </summary>
    private LayerRead Contain(Exception ex, IImageSource source, FormatSource formatSource, int index, ImageFormat used, ImageFormat probed, ThoroughDetection? detection)
    {
        LayerFacts facts;
        if (ex is ImageFormatException format)
        {
            facts = LayerFacts.Failed(format.Error, format.Message);
        }
        else if (ex is IOException or UnauthorizedAccessException)
        {
            string message = $"Could not read '{source.Name}': {ErrorWords.Describe(ex)}";
            _findings.Add(new ChainFinding(FindingCodes.UnreachableImage, index, message));
            return new LayerRead(null, used, probed, detection, ChainEnding.Missing, message);
        }
        else
        {
            ReaderFaults++;
            ResolverLog.ReaderFault(_logger, source.Name, ex);
            facts = LayerFacts.Failed(HeaderError.Inconsistent, $"the {used.GetQemuName()} header could not be read ({ex.GetType().Name})");
        }

        return Conclude(source, formatSource, index, facts, used, probed, detection);
    }

    /// <summary>What the facts a reader gave (or its failure) make of the layer: the mismatch finding and the walk's end on an error.</summary>
    private LayerRead Conclude(
        IImageSource source, FormatSource formatSource, int index, LayerFacts facts, ImageFormat used, ImageFormat probed, ThoroughDetection? detection)
    {
        if (used != probed && used != ImageFormat.Raw)
        {
            _findings.Add(new ChainFinding(
                FindingCodes.FormatMismatch,
                index,
                $"'{source.Name}' is read as {used.GetQemuName()} ({formatSource.ToString().ToLowerInvariant()}) but its content probes as {probed.GetQemuName()}."));
        }

        if (facts.Error != HeaderError.None)
        {
            // A reader that failed because the gate kept a file from it (a refused extent) ended the walk there.
            foreach (ReferenceDecision decision in _pending)
            {
                if (decision.Outcome != ReferenceOutcome.Opened)
                {
                    return new LayerRead(null, used, probed, detection, ReferenceGate.EndingFor(decision.Outcome), _findings[^1].Message);
                }
            }

            string message = $"Could not open '{source.Name}': {facts.ErrorMessage}";
            string code = facts.Error == HeaderError.UnsupportedFeature ? FindingCodes.UnsupportedFeature : FindingCodes.MalformedHeader;
            _findings.Add(new ChainFinding(code, index, message));
            return new LayerRead(null, used, probed, detection, ChainEnding.Malformed, message);
        }

        return new LayerRead(facts, used, probed, detection, null, null);
    }
}
