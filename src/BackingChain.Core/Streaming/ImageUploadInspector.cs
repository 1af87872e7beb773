using System;
using System.Buffers;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Detection;
using BackingChain.Formats;
using BackingChain.Sources;
using BackingChain.Trust;

namespace BackingChain.Streaming;

/// <summary>
/// The upload gate: inspects a forward-only upload (an HTTP request body, for example) as it streams past and
/// says what it is, what it names and whether it may be used, holding only a bounded window of it.
/// </summary>
/// <remarks>
/// <para>
/// <b>Memory.</b> Of the upload, only the first <see cref="UploadInspectionOptions.HeadWindowLength"/> bytes
/// (default 4 MiB; only the 4 KiB thorough detection looks at when the upload is raw) and the last
/// <see cref="UploadInspectionOptions.TailWindowLength"/> bytes (default 64 KiB, kept in a ring) are held, in
/// pooled arrays, so the buffers held at once never exceed head window + tail window + 64 KiB (each array
/// rounded up to the pool's power-of-two size). Every buffer the reader returns is consumed whole
/// (<c>AdvanceTo(buffer.End)</c>), so the pipe never accumulates the upload either. Once the upload ends, the
/// format reader runs over the retained bytes through the same code that reads files; a read outside the windows
/// is never satisfied by buffering more: it becomes an <c>unsupported-feature</c> finding and a rejection
/// (<see cref="UploadVerdictReason.MetadataOutsideWindow"/>). Readers take views of the retained bytes rather
/// than buffers of their own, so a header asking for a large range costs nothing.
/// </para>
/// <para>
/// <b>Verdict.</b> An upload is a single image whose references cannot be followed from the upload. It is
/// rejected when: its length differs from <see cref="UploadInspectionOptions.ExpectedLength"/>; its format has
/// no reader; its metadata lies outside the windows; its header uses an unknown incompatible feature or is
/// malformed; its format was probed (not declared), is not raw and it names any file (libvirt's rule — a guest
/// may have written that header, and an upload is not the place to trust one); or it names a file the policy
/// does not trust (backing file, external data file, extent, parent), or a protocol or <c>json:</c> name; or it
/// can only be described by opening a file it names (a VMDK descriptor's extents), since nothing an upload names
/// is ever opened; or its format was probed and its content carries several formats' signatures (a polyglot,
/// found by thorough detection over the head and tail windows). A declared raw upload is accepted whatever its first sector says (a <c>format-mismatch</c>
/// finding records what it probes as). Everything else is accepted. When several rules apply, every finding is
/// reported and <see cref="UploadInspection.Reason"/> names the first rule in the order of
/// <see cref="UploadVerdictReason"/>.
/// </para>
/// <para>The inspector reads the pipe to its end but does not complete it; the caller owns the reader.</para>
/// </remarks>
/// <example>
/// Gating an ASP.NET Core upload while storing it:
/// <code>
/// await using FileStream file = File.Create(temporaryPath);
/// var options = new UploadInspectionOptions
/// {
///     DeclaredFormat = ImageFormat.Qcow2,
///     ExpectedLength = request.ContentLength,
///     Name = finalPath,
/// };
/// UploadInspection inspection = await ImageUploadInspector.InspectAsync(request.BodyReader, file, options, cancellationToken);
/// if (!inspection.IsAccepted)
/// {
///     File.Delete(temporaryPath);
///     return Results.UnprocessableEntity(inspection.Findings);
/// }
/// </code>
/// </example>
public static class ImageUploadInspector
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
    /// <param name="destination">Where the upload is stored; written in order, flushed at the end, not disposed.</param>
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
        using var windows = new RetainedWindows(options.HeadWindowLength, options.TailWindowLength);
        using IncrementalHash? hash = options.ComputeSha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;

        await PumpAsync(reader, destination, windows, hash, options.DeclaredFormat, cancellationToken).ConfigureAwait(false);
        if (destination is not null)
        {
            await destination.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        windows.Complete();
        string? sha256 = hash is null ? null : Convert.ToHexStringLower(hash.GetHashAndReset());
        return await JudgeAsync(windows, options, sha256, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The read loop: every buffer is offered to the windows (and the destination and hash), then consumed
    /// whole, so neither the pipe nor the inspector accumulates the upload. Chunk boundaries never matter: the
    /// windows see one byte sequence whatever the segmentation.
    /// </summary>
    private static async ValueTask PumpAsync(
        PipeReader reader, Stream? destination, RetainedWindows windows, IncrementalHash? hash, ImageFormat? declared, CancellationToken cancellationToken)
    {
        bool headLimitDecided = false;
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

            try
            {
                foreach (ReadOnlyMemory<byte> segment in buffer)
                {
                    if (destination is not null)
                    {
                        // The segment's memory stays valid until AdvanceTo, so it can be written without a copy.
                        await destination.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
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
                }
            }
            finally
            {
                // consumed == examined == the whole buffer: nothing is left for the pipe to hold on to.
                reader.AdvanceTo(buffer.End);
            }

            if (result.IsCompleted)
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

    private static async ValueTask<UploadInspection> JudgeAsync(RetainedWindows windows, UploadInspectionOptions options, string? sha256, CancellationToken cancellationToken)
    {
        string name = options.Name ?? DefaultName;
        var judgement = new Judgement();
        var source = new RetainedWindowSource(windows, name);

        ReadOnlyMemory<byte> head = windows.Head[..Math.Min(ImageReadLimits.HeadLength, windows.HeadCount)];

        // Never the file name: an uploader chooses it (security.md, anchor 11).
        ThoroughDetection detection = DetectThorough(windows);
        ImageFormat probed = detection.QemuFormat;
        ImageFormat? declared = options.DeclaredFormat;
        ImageFormat used = declared ?? probed;
        FormatSource formatSource = declared is null ? FormatSource.Probed : FormatSource.Declared;

        if (options.ExpectedLength is long expected && expected != windows.Length)
        {
            string how = windows.Length < expected ? "ended after" : "carried";
            judgement.Reject(UploadVerdictReason.LengthMismatch, FindingCodes.MalformedHeader, $"The upload {how} {windows.Length} bytes, but {expected} were announced.");
        }

        NoteContent(name, declared, detection, judgement);

        ChainLayer? layer = null;
        ImmutableArray<ImageReference> references = ImmutableArray<ImageReference>.Empty;
        IImageFormatReader? reader = FormatReaders.Get(used);
        if (reader is null)
        {
            judgement.Reject(UploadVerdictReason.UnsupportedFormat, FindingCodes.UnsupportedFeature, $"'{name}': format '{used.GetQemuName()}' is not supported.");
        }
        else
        {
            var needed = new List<StoredReference>();
            LayerFacts facts = await ReadFactsAsync(reader, source, head, needed, cancellationToken).ConfigureAwait(false);
            string? resolveAgainst = options.Name;
            if (facts.Error == HeaderError.None)
            {
                references = Classify(facts.References, resolveAgainst);
                layer = BuildLayer(facts, source, name, used, formatSource, probed, references, sha256);
            }
            else if (needed.Count > 0)
            {
                // The reader had to open a file the image names (a VMDK extent) to describe it, and uploads open
                // nothing: report what it names and judge that, rather than the reader's "could not open".
                references = Classify(needed, resolveAgainst);
            }

            if (source.HasMisses)
            {
                (long offset, long length) = source.Misses[0];
                string stopped = facts.Error == HeaderError.None ? "" : $" The reader stopped: {facts.ErrorMessage}";
                judgement.Reject(
                    UploadVerdictReason.MetadataOutsideWindow,
                    FindingCodes.UnsupportedFeature,
                    $"'{name}' ({used.GetQemuName()}) keeps metadata at offset {offset} ({length} bytes), outside the bytes kept while streaming (the first {windows.HeadCount} and the last {windows.TailCount}); raise the head or tail window (at most {UploadInspectionOptions.MaxWindowLength} bytes) to inspect it.{stopped}");
            }
            else if (facts.Error != HeaderError.None && needed.Count == 0)
            {
                bool unsupported = facts.Error == HeaderError.UnsupportedFeature;
                judgement.Reject(
                    unsupported ? UploadVerdictReason.UnsupportedFeature : UploadVerdictReason.MalformedHeader,
                    unsupported ? FindingCodes.UnsupportedFeature : FindingCodes.MalformedHeader,
                    $"Could not open '{name}': {facts.ErrorMessage}");
            }

            bool referencesRejected = JudgeReferences(name, used, formatSource, references, options.Policy, judgement);
            if (facts.Error != HeaderError.None && needed.Count > 0 && !referencesRejected)
            {
                // Every file it names is trusted, but it cannot be described without opening one.
                judgement.Reject(
                    UploadVerdictReason.ReferenceNotAllowed,
                    FindingCodes.UnreachableImage,
                    $"'{name}' can only be described by opening '{needed[0].Name}' ({needed[0].Role}), and an upload's references are never opened.");
            }
        }

        UploadVerdictReason reason = judgement.Rejection ?? AcceptReason(declared, used, references);
        TrustDecision verdict = judgement.Rejection is null ? TrustDecision.Accepted : TrustDecision.Rejected;
        return new UploadInspection(verdict, reason, used, formatSource, detection, windows.Length, layer, references, judgement.Findings.ToImmutable(), sha256, windows.PeakBufferBytes);
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
    private static void NoteContent(string name, ImageFormat? declared, ThoroughDetection detection, Judgement judgement)
    {
        if (detection.IsPolyglot)
        {
            string found = DescribeSignatures(detection);
            if (declared is ImageFormat d)
            {
                judgement.Note(FindingCodes.FormatMismatch, $"'{name}' carries the signatures of several formats ({found}); it is read as declared ({d.GetQemuName()}).");
            }
            else
            {
                judgement.Reject(UploadVerdictReason.AmbiguousContent, FindingCodes.FormatMismatch, $"'{name}' carries the signatures of several formats ({found}); declare its format to use it.");
            }

            return;
        }

        if (declared is ImageFormat declaredFormat)
        {
            if (declaredFormat != detection.Format)
            {
                string use = declaredFormat == ImageFormat.Raw ? "it is used as raw, and nothing in it is read as a header" : "it is read as declared";
                judgement.Note(FindingCodes.FormatMismatch, $"'{name}' is declared {declaredFormat.GetQemuName()} but its content shows {detection.Format.GetQemuName()} ({DescribeSignatures(detection)}); {use}.");
            }
        }
        else if (detection.DiffersFromQemu)
        {
            judgement.Note(FindingCodes.FormatMismatch, $"'{name}' shows {detection.Format.GetQemuName()} ({DescribeSignatures(detection)}), but qemu's probe reads it as {detection.QemuFormat.GetQemuName()}, which is how it is judged.");
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

    private static async ValueTask<LayerFacts> ReadFactsAsync(
        IImageFormatReader reader, RetainedWindowSource source, ReadOnlyMemory<byte> head, List<StoredReference> needed, CancellationToken cancellationToken)
    {
        try
        {
            // The opener records what the reader asks for and opens nothing: an upload's references are judged, never followed.
            var context = new LayerReadContext(source, head, (reference, _) =>
            {
                needed.Add(reference);
                return new ValueTask<IImageSource?>((IImageSource?)null);
            });
            return await reader.ReadAsync(context, cancellationToken).ConfigureAwait(false);
        }
        catch (ImageFormatException ex)
        {
            return LayerFacts.Failed(ex.Error, ex.Message);
        }
        catch (Exception ex) when (ex is ArgumentException or IndexOutOfRangeException or OverflowException or DivideByZeroException)
        {
            // A reader must only throw ImageFormatException; if hostile bytes still trip a runtime check, the gate
            // fails closed with a finding instead of turning an upload into a server error.
            return LayerFacts.Failed(HeaderError.Inconsistent, $"the {reader.Format.GetQemuName()} reader could not read this header ({ex.GetType().Name}).");
        }
    }

    /// <summary>Classifies stored names by qemu's rules; relative ones resolve against the upload's future name, when given.</summary>
    private static ImmutableArray<ImageReference> Classify(IReadOnlyList<StoredReference> stored, string? resolveAgainst)
    {
        var references = ImmutableArray.CreateBuilder<ImageReference>(stored.Count);
        foreach (StoredReference reference in stored)
        {
            ReferenceKind kind = QemuPaths.Classify(reference.Name);

            // Without the name the upload will have, a relative reference has no directory to be relative to.
            string? fullName = resolveAgainst is null
                ? (kind == ReferenceKind.RelativePath ? null : QemuPaths.Combine("", reference.Name))
                : QemuPaths.Combine(resolveAgainst, reference.Name);
            references.Add(new ImageReference(reference.Name, reference.Role, reference.RecordedFormat, kind, fullName));
        }

        return references.MoveToImmutable();
    }

    private static ChainLayer BuildLayer(
        LayerFacts facts, RetainedWindowSource source, string name, ImageFormat used, FormatSource formatSource, ImageFormat probed, ImmutableArray<ImageReference> references, string? sha256) =>
        new()
        {
            Filename = name,
            Format = used,
            FormatSource = formatSource,
            ProbedFormat = probed,
            Identity = source.Identity,
            VirtualSize = facts.VirtualSize,
            ClusterSize = facts.ClusterSize,
            DirtyFlag = facts.DirtyFlag,
            Encrypted = facts.Encrypted,
            References = references,
            FormatSpecific = facts.FormatSpecific,
            Sha256 = sha256,
        };

    /// <summary>
    /// References of an upload are judged, never followed: a probed non-raw image may name nothing at all, and a
    /// declared one only files in trusted locations (protocol, <c>json:</c> and Windows names never are).
    /// </summary>
    /// <returns>Whether any reference was rejected.</returns>
    private static bool JudgeReferences(string name, ImageFormat format, FormatSource formatSource, ImmutableArray<ImageReference> references, TrustPolicy policy, Judgement judgement)
    {
        foreach (ImageReference reference in references)
        {
            if (reference.Role == ReferenceRole.ExternalDataFile)
            {
                judgement.Note(FindingCodes.ExternalDataFile, $"'{name}' keeps its data in the external file '{reference.StoredName}'.");
            }
            else if (reference.Role == ReferenceRole.VmdkExtent)
            {
                judgement.Note(FindingCodes.ExternalExtent, $"'{name}' names the extent file '{reference.StoredName}'.");
            }
        }

        if (references.IsEmpty)
        {
            return false;
        }

        if (formatSource == FormatSource.Probed && format != ImageFormat.Raw)
        {
            judgement.Reject(
                UploadVerdictReason.ProbedWithReferences,
                FindingCodes.ProbedFormatWithReferences,
                $"The format of '{name}' was probed as {format.GetQemuName()} and it names {Describe(references)}; a guest could have written that header. Declare the format to inspect it as such.");
            return true;
        }

        bool rejected = false;
        foreach (ImageReference reference in references)
        {
            if (!reference.IsLocalPath)
            {
                rejected = true;
                judgement.Reject(
                    UploadVerdictReason.ReferenceNotAllowed,
                    FindingCodes.ProtocolReference,
                    $"'{name}' names '{reference.StoredName}' ({reference.Role}), a {reference.Kind.ToString().ToLowerInvariant()} reference; an upload may not name one.");
            }
            else if (!policy.IsLocationTrusted(reference))
            {
                // Missing and not allowed read the same, so an uploader learns nothing about the host's files.
                rejected = true;
                judgement.Reject(
                    UploadVerdictReason.ReferenceNotAllowed,
                    FindingCodes.UnreachableImage,
                    $"'{name}' names '{reference.StoredName}' ({reference.Role}): missing, or not allowed by the trust policy.");
            }
        }

        return rejected;
    }

    private static UploadVerdictReason AcceptReason(ImageFormat? declared, ImageFormat used, ImmutableArray<ImageReference> references)
    {
        bool hasReferences = !references.IsEmpty;
        return declared switch
        {
            ImageFormat.Raw => UploadVerdictReason.DeclaredRaw,
            not null => hasReferences ? UploadVerdictReason.DeclaredWithTrustedReferences : UploadVerdictReason.DeclaredWithoutReferences,
            null => used == ImageFormat.Raw ? UploadVerdictReason.ProbedRaw : UploadVerdictReason.ProbedWithoutReferences,
        };
    }

    private static string Describe(ImmutableArray<ImageReference> references)
    {
        var parts = new string[references.Length];
        for (int i = 0; i < references.Length; i++)
        {
            parts[i] = $"'{references[i].StoredName}' ({references[i].Role})";
        }

        return string.Join(", ", parts);
    }

    /// <summary>Findings in order, and the highest-priority rejection so far (the enum's order is the priority).</summary>
    private sealed class Judgement
    {
        public ImmutableArray<ChainFinding>.Builder Findings { get; } = ImmutableArray.CreateBuilder<ChainFinding>();

        public UploadVerdictReason? Rejection { get; private set; }

        public void Note(string code, string message) => Findings.Add(new ChainFinding(code, 0, message));

        public void Reject(UploadVerdictReason reason, string code, string message)
        {
            Note(code, message);
            if (Rejection is null || reason < Rejection)
            {
                Rejection = reason;
            }
        }
    }
}
