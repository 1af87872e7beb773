using System;
using System.Buffers;
using System.Collections.Immutable;
using System.Diagnostics;
using System.IO;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Detection;
using BackingChain.Telemetry;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Streaming;

/// <summary>The upload gate's engine: inspects one forward-only upload as it streams past (see <see cref="ImageUploadGate"/>).</summary>
internal static class ImageUploadInspector
{
    private const string DefaultName = "upload";

    /// <summary>Reads an upload to its end, keeping only the header windows, and judges it.</summary>
    /// <param name="reader">The upload; read to its end, not completed.</param>
    /// <param name="options">Settings; <see cref="UploadInspectionOptions.Default"/> when <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the inspection.</param>
    /// <returns>The inspection, with its verdict. Problems with the image are findings, never exceptions.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="reader"/> is <see langword="null"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled, or a pending read was canceled.</exception>
    /// <exception cref="IOException">The upload failed (for example, the connection was reset).</exception>
    public static ValueTask<UploadInspection> InspectAsync(PipeReader reader, UploadInspectionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return InspectCoreAsync(reader, null, options ?? UploadInspectionOptions.Default, cancellationToken);
    }

    /// <summary>Reads an upload to its end, copying every byte to <paramref name="destination"/> as it passes, and judges it.</summary>
    /// <param name="reader">The upload; read to its end, not completed.</param>
    /// <param name="destination">Where the upload is stored, flushed at the end, not disposed: a seekable file keeps the upload's zero blocks as holes (<see cref="UploadInspectionOptions.SparseDestination"/>), any other stream gets every byte in order.</param>
    /// <param name="options">Settings; <see cref="UploadInspectionOptions.Default"/> when <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the inspection.</param>
    /// <returns>The inspection, with its verdict. Delete what was stored when it is rejected.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="reader"/> or <paramref name="destination"/> is <see langword="null"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled, or a pending read was canceled.</exception>
    /// <exception cref="IOException">The upload or the destination failed.</exception>
    public static ValueTask<UploadInspection> InspectAsync(PipeReader reader, Stream destination, UploadInspectionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(destination);
        return InspectCoreAsync(reader, destination, options ?? UploadInspectionOptions.Default, cancellationToken);
    }

    private static async ValueTask<UploadInspection> InspectCoreAsync(PipeReader reader, Stream? destination, UploadInspectionOptions options, CancellationToken cancellationToken)
    {
        // Started here rather than in the gate so that callers of this static entry are traced and measured too.
        using Activity? activity = BackingChainTelemetry.Source.StartActivity(BackingChainTelemetry.InspectUploadActivityName);
        UploadInspection inspection = await InspectUntracedAsync(reader, destination, options, cancellationToken).ConfigureAwait(false);
        BackingChainTelemetry.Record(
            activity, inspection.IsAccepted, inspection.Reason.GetStableName(), inspection.Format.GetQemuName(), inspection.Length, inspection.Report.Chain.Layers.Length);
        return inspection;
    }

    private static async ValueTask<UploadInspection> InspectUntracedAsync(PipeReader reader, Stream? destination, UploadInspectionOptions options, CancellationToken cancellationToken)
    {
        using var windows = new RetainedWindows(options.HeadWindowLength, options.TailWindowLength);
        using IncrementalHash? hash = options.ComputeSha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;

        using UploadDestinationWriter? writer = destination is null ? null : UploadDestinationWriter.Create(destination, options.SparseDestination);

        await PumpAsync(reader, writer, windows, hash, options.DeclaredFormat, options.ExpectedLength, cancellationToken).ConfigureAwait(false);
        if (writer is not null)
        {
            await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
            await destination!.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        windows.Complete();
        string? sha256 = hash is null ? null : Convert.ToHexStringLower(hash.GetHashAndReset());
        return await JudgeAsync(windows, options, sha256, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The read loop: every buffer is offered to the windows (and the destination and hash), then consumed
    /// whole, so neither the pipe nor the inspector accumulates the upload. Chunk boundaries never matter: the
    /// windows see one byte sequence whatever the segmentation. With an announced length, reading stops at the first
    /// byte past it: that byte proves the upload too long, and nothing beyond it is read or stored.
    /// </summary>
    private static async ValueTask PumpAsync(
        PipeReader reader, UploadDestinationWriter? destination, RetainedWindows windows, IncrementalHash? hash, ImageFormat? declared, long? expectedLength, CancellationToken cancellationToken)
    {
        bool headLimitDecided = false;
        long limit = expectedLength is long expected ? expected + 1 : long.MaxValue;
        while (true)
        {
            ReadResult result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            if (result.IsCanceled)
            {
                // Someone called CancelPendingRead: the upload is abandoned, not finished. Nothing of this buffer was
                // used, so none of it is consumed and the reader is left ready for its owner's next read.
                reader.AdvanceTo(buffer.Start);
                throw new OperationCanceledException("The upload read was canceled.");
            }

            long consumed = 0;
            bool overlong = false;
            try
            {
                foreach (ReadOnlyMemory<byte> whole in buffer)
                {
                    ReadOnlyMemory<byte> segment = whole;
                    if (segment.Length >= limit - windows.Length)
                    {
                        segment = segment[..(int)(limit - windows.Length)];
                        overlong = true;
                    }

                    consumed += segment.Length;
                    if (destination is not null)
                    {
                        // The segment's memory stays valid until AdvanceTo, so it can be written without a copy. The
                        // byte past an announced length is never stored.
                        ReadOnlyMemory<byte> stored = overlong ? segment[..^1] : segment;
                        await destination.WriteAsync(stored, cancellationToken).ConfigureAwait(false);
                    }

                    hash?.AppendData(segment.Span);
                    ReadOnlySpan<byte> span = segment.Span;
                    if (!headLimitDecided)
                    {
                        // Stop exactly at the probe length, decide how much head the format needs, then go on.
                        int take = (int)Math.Min(span.Length, ImageFormatDetector.ProbeLength - windows.Length);
                        windows.Append(span[..take]);
                        span = span[take..];
                        if (windows.Length >= ImageFormatDetector.ProbeLength)
                        {
                            headLimitDecided = true;
                            if (IsRaw(declared, windows.Head.Span))
                            {
                                windows.LimitHead(ImageFormatDetector.ThoroughHeadLength);
                            }
                        }
                    }

                    windows.Append(span);
                    if (overlong)
                    {
                        break;
                    }
                }
            }
            finally
            {
                // consumed == examined == the whole buffer (up to the byte past an announced length): nothing is left
                // for the pipe to hold on to.
                reader.AdvanceTo(overlong ? buffer.GetPosition(consumed) : buffer.End);
            }

            if (result.IsCompleted || overlong)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Raw needs no header: declared raw, or probed raw when nothing is declared. It keeps only the head that thorough
    /// detection looks at.
    /// </summary>
    private static bool IsRaw(ImageFormat? declared, ReadOnlySpan<byte> probe) =>
        (declared ?? ImageFormatDetector.Detect(probe)) == ImageFormat.Raw;

    /// <summary>
    /// The upload is the top layer of a chain walked by the same resolver, gate and judge as a file: it is read from the
    /// retained windows, and the files it names are opened only when the policy allows it, exactly as for a file.
    /// What only an upload has — its announced length, the bounds of its windows, what thorough detection saw in
    /// them — is handed to the judge as facts about the input.
    /// </summary>
    private static async ValueTask<UploadInspection> JudgeAsync(RetainedWindows windows, UploadInspectionOptions options, string? sha256, CancellationToken cancellationToken)
    {
        string name = options.Name ?? DefaultName;
        var source = new RetainedWindowSource(windows, name);

        // Never from the file name: the uploader chooses it, so an extension would let them pick the format we read.
        ThoroughDetection detection = DetectThorough(windows);
        ImageFormat? declared = options.DeclaredFormat;
        var facts = ImmutableArray.CreateBuilder<InputFact>();

        if (options.ExpectedLength is long expected && expected != windows.Length)
        {
            string message = windows.Length < expected
                ? $"The upload ended after {windows.Length} bytes, but {expected} were announced."
                : $"The upload carried more than the {expected} bytes announced; reading stopped at the first byte past them.";
            facts.Add(new InputFact(TrustReason.LengthMismatch, new ChainFinding(FindingCodes.MalformedHeader, 0, message)));
        }

        if (windows.Length == 0 && !options.AllowEmpty)
        {
            // Recorded as a fact for the one judge, like the length check: the gate itself decides nothing.
            facts.Add(new InputFact(TrustReason.EmptyUpload, new ChainFinding(
                FindingCodes.MalformedHeader, 0, $"The upload '{name}' is empty: it carried no byte, and empty uploads are not allowed.")));
        }

        NoteContent(name, declared, detection, facts);

        // The gate's walk settings and its logger: the files an upload names are walked as a stored chain would be.
        ImageChainResolver resolver = options.Walk.CreateResolver(options.Logger);
        ImageChain chain = await resolver.WalkAsync(source, declared, detection, topHasLocation: options.Name is not null, cancellationToken).ConfigureAwait(false);

        if (source.HasMisses)
        {
            (long offset, long length) = source.Misses[0];
            ImageFormat used = declared ?? detection.QemuFormat;
            facts.Add(new InputFact(TrustReason.MetadataOutsideWindow, new ChainFinding(
                FindingCodes.UnsupportedFeature,
                0,
                $"'{name}' ({used.GetQemuName()}) keeps metadata at offset {offset} ({length} bytes), outside the bytes kept while streaming (the first {windows.HeadCount} and the last {windows.TailCount}); raise the head or tail window (at most {UploadInspectionOptions.MaxWindowLength} bytes) to inspect it.")));
        }

        TrustReport report = TrustEvaluator.Evaluate(chain, facts.ToImmutable());
        return new UploadInspection(report, declared ?? detection.QemuFormat, declared is null ? FormatSource.Probed : FormatSource.Declared, detection, windows.Length, sha256, windows.PeakBufferBytes);
    }

    /// <summary>Thorough detection over the retained head and the true last bytes of the upload, as far as they were kept.</summary>
    private static ThoroughDetection DetectThorough(RetainedWindows windows)
    {
        ReadOnlySpan<byte> head = windows.Head.Span[..Math.Min(ImageFormatDetector.ThoroughHeadLength, windows.HeadCount)];
        Span<byte> tail = stackalloc byte[ImageFormatDetector.ThoroughTailLength];
        int wanted = (int)Math.Min(tail.Length, windows.Length);
        if (!windows.TryCopy(windows.Length - wanted, tail[..wanted]))
        {
            // A tail window smaller than the detector's: give it what there is.
            wanted = Math.Min(wanted, windows.TailCount);
            windows.Tail.Span[^wanted..].CopyTo(tail);
        }

        return ImageFormatDetector.DetectThorough(head, tail[..wanted], windows.Length);
    }

    /// <summary>
    /// What the content shows beyond qemu's probe. A declared format is used whatever the content says, so a
    /// difference is only noted; an undeclared upload carrying several formats' signatures is ambiguous and
    /// rejected, as OpenStack's inspector does ("Multiple formats detected").
    /// </summary>
    private static void NoteContent(string name, ImageFormat? declared, ThoroughDetection detection, ImmutableArray<InputFact>.Builder facts)
    {
        if (detection.IsPolyglot)
        {
            string found = DescribeSignatures(detection);
            // Probed, it is the judge's to refuse (the layer's detection shows the polyglot); declared, it is only noted.
            if (declared is ImageFormat d)
            {
                Note(facts, FindingCodes.FormatMismatch, $"'{name}' carries the signatures of several formats ({found}); it is read as declared ({d.GetQemuName()}).");
            }

            return;
        }

        if (declared is ImageFormat declaredFormat)
        {
            if (declaredFormat != detection.Format)
            {
                string use = declaredFormat == ImageFormat.Raw ? "it is used as raw, and nothing in it is read as a header" : "it is read as declared";
                Note(facts, FindingCodes.FormatMismatch, $"'{name}' is declared {declaredFormat.GetQemuName()} but its content shows {detection.Format.GetQemuName()} ({DescribeSignatures(detection)}); {use}.");
            }
        }
        else if (detection.DiffersFromQemu)
        {
            Note(facts, FindingCodes.FormatMismatch, $"'{name}' shows {detection.Format.GetQemuName()} ({DescribeSignatures(detection)}), but qemu's probe reads it as {detection.QemuFormat.GetQemuName()}, which is how it is judged.");
        }
    }

    private static string DescribeSignatures(ThoroughDetection detection)
    {
        if (detection.Signatures.IsEmpty)
        {
            return "no format signature";
        }

        var parts = new string[detection.Signatures.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            parts[i] = detection.Signatures[i].Description;
        }

        return string.Join("; ", parts);
    }

    private static void Note(ImmutableArray<InputFact>.Builder facts, string code, string message) =>
        facts.Add(new InputFact(null, new ChainFinding(code, 0, message)));
}
