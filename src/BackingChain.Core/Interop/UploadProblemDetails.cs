using System;
using System.IO;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Streaming;
using BackingChain.Trust;

namespace BackingChain.Interop;

/// <summary>
/// Writes a rejected upload as RFC 9457 problem details (<c>application/problem+json</c>), so an HTTP service can
/// answer a refused image with a body every client library understands. Hand-written over
/// <see cref="Utf8JsonWriter"/>: trimming- and NativeAOT-safe.
/// </summary>
/// <remarks>
/// <para>The mapping, one problem type per <see cref="TrustReason"/> that rejects:</para>
/// <list type="table">
/// <listheader><term>member</term><description>value</description></listheader>
/// <item><term><c>type</c></term><description><c>tag:backingchain.core,2026:problem:</c> followed by the reason's stable name
/// (<see cref="StableNames.GetStableName(TrustReason)"/>), e.g.
/// <c>tag:backingchain.core,2026:problem:probed-with-untrusted-references</c>. A <c>tag:</c> URI (RFC 4151) names the
/// problem without pretending to be a page that can be fetched, as RFC 9457 §3.1.1 allows.</description></item>
/// <item><term><c>title</c></term><description>a fixed sentence per reason; it never
/// contains anything the uploader wrote.</description></item>
/// <item><term><c>status</c></term><description><see cref="Status"/> (422 Unprocessable Content): the request was
/// well formed, the image in it is refused.</description></item>
/// <item><term><c>detail</c></term><description>the first finding's message.</description></item>
/// <item><term><c>instance</c></term><description>what the caller passes (the request path), when it passes one.</description></item>
/// <item><term><c>reason</c> (extension)</term><description>the reason's stable name.</description></item>
/// <item><term><c>findings</c> (extension)</term><description>every finding: <c>code</c> (the stable codes of
/// <see cref="FindingCodes"/>), <c>layer</c>, <c>message</c>.</description></item>
/// </list>
/// </remarks>
public static class UploadProblemDetails
{
    /// <summary>The media type of problem details in JSON: <c>application/problem+json</c>.</summary>
    public const string ContentType = "application/problem+json";

    /// <summary>The HTTP status of a refused upload: 422 (Unprocessable Content).</summary>
    public const int Status = 422;

    /// <summary>What every problem type URI starts with; the reason's stable name follows.</summary>
    internal const string TypeUriPrefix = "tag:backingchain.core,2026:problem:";

    /// <summary>The problem type URI of a reason, e.g. <c>tag:backingchain.core,2026:problem:reference-not-trusted</c>.</summary>
    /// <param name="reason">The reason.</param>
    /// <returns>The URI.</returns>
    internal static string GetTypeUri(TrustReason reason) => TypeUriPrefix + reason.GetStableName();

    /// <summary>The fixed title of a reason's problem type.</summary>
    /// <param name="reason">The reason.</param>
    /// <returns>The title.</returns>
    internal static string GetTitle(TrustReason reason) => reason switch
    {
        TrustReason.ProbedWithUntrustedReferences => "The image's format had to be guessed and it names files that are not trusted.",
        TrustReason.AmbiguousContent => "The image carries the signatures of several formats.",
        TrustReason.UnsafeStructure => "The image's header has structure that is refused for an image from someone else.",
        TrustReason.ReferenceNotTrusted => "The image names a file that is not trusted.",
        TrustReason.ReferenceMissing => "The image names a file that does not exist.",
        TrustReason.ReferenceUnreachable => "The image names a file that cannot be followed.",
        TrustReason.ImageUnreadable => "The image could not be read.",
        TrustReason.MalformedHeader => "The image's header is malformed or truncated.",
        TrustReason.UnsupportedFeature => "The image uses a feature that is not supported.",
        TrustReason.BackingLoop => "The image's backing chain loops.",
        TrustReason.ChainTooDeep => "The image's backing chain is too deep.",
        TrustReason.LengthMismatch => "The upload's length differs from the length announced.",
        TrustReason.MetadataOutsideWindow => "The image keeps metadata outside the part of the upload that is inspected.",
        TrustReason.EmptyUpload => "The upload is empty.",
        _ => "The image was accepted.",
    };

    /// <summary>Writes the problem details of a rejected upload, followed by a newline.</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="inspection">The rejected upload's inspection.</param>
    /// <param name="instance">The problem's <c>instance</c> (e.g. the request path), or <see langword="null"/> to leave it out.</param>
    /// <exception cref="ArgumentException">The inspection accepted the upload: there is no problem to describe.</exception>
    public static void Write(Stream stream, UploadInspection inspection, string? instance = null) => Write(stream, inspection, instance, null);

    /// <summary>Writes the problem details of a rejected upload, followed by a newline, with its server paths presented as <paramref name="names"/> says.</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="inspection">The rejected upload's inspection.</param>
    /// <param name="instance">The problem's <c>instance</c> (e.g. the request path), or <see langword="null"/> to leave it out.</param>
    /// <param name="names">How paths are shown to the client (<see cref="ImageNameMapping.RelativeTo"/>), or <see langword="null"/> to write them as they are.</param>
    /// <exception cref="ArgumentException">The inspection accepted the upload: there is no problem to describe.</exception>
    public static void Write(Stream stream, UploadInspection inspection, string? instance, ImageNameMapping? names)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(inspection);
        ThrowIfAccepted(inspection);
        JsonOutput.Write(stream, inspection, (writer, i) => Write(writer, i, instance, names));
    }

    /// <summary>
    /// Writes the problem details of a rejected upload and a newline, with asynchronous writes only (for an HTTP
    /// response body; set <see cref="ContentType"/> and <see cref="Status"/> on the response first).
    /// </summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="inspection">The rejected upload's inspection.</param>
    /// <param name="instance">The problem's <c>instance</c> (e.g. the request path), or <see langword="null"/> to leave it out.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the document is written and flushed.</returns>
    /// <exception cref="ArgumentException">The inspection accepted the upload: there is no problem to describe.</exception>
    public static Task WriteAsync(Stream stream, UploadInspection inspection, string? instance = null, CancellationToken cancellationToken = default) =>
        WriteAsync(stream, inspection, instance, null, cancellationToken);

    /// <summary>
    /// Writes the problem details of a rejected upload and a newline, with asynchronous writes only, its server paths
    /// presented as <paramref name="names"/> says.
    /// </summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="inspection">The rejected upload's inspection.</param>
    /// <param name="instance">The problem's <c>instance</c> (e.g. the request path), or <see langword="null"/> to leave it out.</param>
    /// <param name="names">How paths are shown to the client (<see cref="ImageNameMapping.RelativeTo"/>), or <see langword="null"/> to write them as they are.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the document is written and flushed.</returns>
    /// <exception cref="ArgumentException">The inspection accepted the upload: there is no problem to describe.</exception>
    public static Task WriteAsync(Stream stream, UploadInspection inspection, string? instance, ImageNameMapping? names, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(inspection);
        ThrowIfAccepted(inspection);
        return JsonOutput.WriteAsync(stream, inspection, (writer, i) => Write(writer, i, instance, names), cancellationToken);
    }

    private static void ThrowIfAccepted(UploadInspection inspection)
    {
        if (inspection.IsAccepted)
        {
            throw new ArgumentException("The upload was accepted: there is no problem to describe.", nameof(inspection));
        }
    }

    /// <summary>Writes the problem details as one JSON object; the public writers checked the arguments.</summary>
    private static void Write(Utf8JsonWriter writer, UploadInspection inspection, string? instance, ImageNameMapping? names)
    {
        Func<string, string> text = names?.For(inspection.Report) ?? TrustReportJson.AsIs;
        writer.WriteStartObject();
        writer.WriteString("type", GetTypeUri(inspection.Reason));
        writer.WriteString("title", GetTitle(inspection.Reason));
        writer.WriteNumber("status", Status);
        writer.WriteString("detail", inspection.Findings.IsEmpty ? GetTitle(inspection.Reason) : text(inspection.Findings[0].Message));
        if (instance is not null)
        {
            writer.WriteString("instance", instance);
        }

        writer.WriteString("reason", inspection.Reason.GetStableName());

        // What the upload was read as, even when its header could not be read: the client learns which format the
        // bytes were taken for, and whether that was its own word or the probe's.
        writer.WriteString("format", inspection.Format.GetQemuName());
        writer.WriteString("format-source", inspection.FormatSource.GetStableName());
        TrustReportJson.WriteFindings(writer, inspection.Findings, text);
        writer.WriteEndObject();
    }
}
