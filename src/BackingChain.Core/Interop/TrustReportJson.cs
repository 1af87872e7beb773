using System;
using System.IO;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Trust;

namespace BackingChain.Interop;

/// <summary>
/// Writes a <see cref="TrustReport"/> as the JSON of <c>backing-chain check --output json</c> (its stable shape):
/// <c>verdict</c>, <c>posture</c>, <c>reason</c>, <c>layers</c> (each with its <c>references</c>: <c>role</c>, <c>name</c>,
/// <c>decision</c>, <c>trusted-by</c>), <c>findings</c>, <c>remediation</c>.
/// </summary>
public static class TrustReportJson
{
    /// <summary>The stable spelling of a format source: <c>declared</c>, <c>recorded</c> or <c>probed</c>.</summary>
    /// <param name="source">The source.</param>
    /// <returns>The name.</returns>
    public static string GetName(FormatSource source) => source switch
    {
        FormatSource.Declared => "declared",
        FormatSource.Recorded => "recorded",
        _ => "probed",
    };

    /// <summary>The stable spelling of a reason, e.g. <c>probed-with-untrusted-references</c>.</summary>
    /// <param name="reason">The reason.</param>
    /// <returns>The name.</returns>
    public static string GetName(TrustReason reason) => reason switch
    {
        TrustReason.FormatDeclared => "format-declared",
        TrustReason.FormatRecorded => "format-recorded",
        TrustReason.ProbedRaw => "probed-raw",
        TrustReason.ProbedWithoutReferences => "probed-without-references",
        TrustReason.ProbedWithTrustedReferences => "probed-with-trusted-references",
        TrustReason.ProbedWithUntrustedReferences => "probed-with-untrusted-references",
        TrustReason.AmbiguousContent => "ambiguous-content",
        TrustReason.UnsafeStructure => "unsafe-structure",
        TrustReason.ReferenceNotTrusted => "reference-not-trusted",
        TrustReason.ReferenceMissing => "reference-missing",
        TrustReason.ReferenceUnreachable => "reference-unreachable",
        TrustReason.ImageUnreadable => "image-unreadable",
        TrustReason.MalformedHeader => "malformed-header",
        TrustReason.UnsupportedFeature => "unsupported-feature",
        TrustReason.BackingLoop => "backing-loop",
        TrustReason.ChainTooDeep => "chain-too-deep",
        TrustReason.LengthMismatch => "length-mismatch",
        TrustReason.EmptyUpload => "empty-upload",
        _ => "metadata-outside-window",
    };

    /// <summary>The stable spelling of a reference role, e.g. <c>backing-file</c>.</summary>
    /// <param name="role">The role.</param>
    /// <returns>The name.</returns>
    public static string GetName(ReferenceRole role) => role switch
    {
        ReferenceRole.BackingFile => "backing-file",
        ReferenceRole.ExternalDataFile => "external-data-file",
        _ => "extent",
    };

    /// <summary>The stable spelling of a gate outcome, e.g. <c>opened</c> or <c>refused</c>.</summary>
    /// <param name="outcome">The outcome.</param>
    /// <returns>The name.</returns>
    public static string GetName(ReferenceOutcome outcome) => outcome switch
    {
        ReferenceOutcome.Opened => "opened",
        ReferenceOutcome.Missing => "missing",
        ReferenceOutcome.Unreadable => "unreadable",
        ReferenceOutcome.Refused => "refused",
        ReferenceOutcome.NotFollowed => "not-followed",
        _ => "not-asked",
    };

    /// <summary>The stable spelling of what let a file be opened, e.g. <c>location</c>, or <c>none</c>.</summary>
    /// <param name="basis">The basis.</param>
    /// <returns>The name.</returns>
    public static string GetName(TrustBasis basis) => basis switch
    {
        TrustBasis.Location => "location",
        TrustBasis.Digest => "digest",
        TrustBasis.AuthenticFormat => "authentic-format",
        TrustBasis.FollowedUntrusted => "followed-untrusted",
        _ => "none",
    };

    /// <summary>The stable spelling of a posture: <c>host</c> or <c>untrusted-image</c>.</summary>
    /// <param name="posture">The posture.</param>
    /// <returns>The name.</returns>
    public static string GetName(TrustPosture posture) => posture == TrustPosture.Host ? "host" : "untrusted-image";

    /// <summary>Writes the report, followed by a newline.</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="report">The report.</param>
    public static void Write(Stream stream, TrustReport report)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(report);
        JsonOutput.Write(stream, report, Write);
    }

    /// <summary>Writes the report as one JSON object and a newline, with asynchronous writes only (for an HTTP response body).</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="report">The report.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the document is written and flushed.</returns>
    public static Task WriteAsync(Stream stream, TrustReport report, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(report);
        return JsonOutput.WriteAsync(stream, report, Write, cancellationToken);
    }

    /// <summary>Writes the report as one JSON object.</summary>
    /// <param name="writer">The writer.</param>
    /// <param name="report">The report.</param>
    public static void Write(Utf8JsonWriter writer, TrustReport report)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(report);
        writer.WriteStartObject();
        writer.WriteString("verdict", report.IsSafe ? "safe" : "unsafe");
        writer.WriteString("posture", GetName(report.Posture));
        writer.WriteString("reason", GetName(report.Reason));
        writer.WriteStartArray("layers");
        foreach (LayerVerdict layer in report.Layers)
        {
            writer.WriteStartObject();
            writer.WriteString("filename", layer.FileName);
            writer.WriteString("format", layer.Format.GetQemuName());
            writer.WriteString("format-source", GetName(layer.FormatSource));
            writer.WriteString("decision", layer.Decision == TrustDecision.Accepted ? "accepted" : "rejected");
            writer.WriteString("reason", GetName(layer.Reason));
            writer.WriteStartArray("references");
            foreach (ReferenceDecision reference in layer.References)
            {
                writer.WriteStartObject();
                writer.WriteString("role", GetName(reference.Reference.Role));
                writer.WriteString("name", reference.Reference.StoredName);
                writer.WriteString("decision", GetName(reference.Outcome));
                writer.WriteString("trusted-by", GetName(reference.Basis));
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        WriteFindings(writer, report.Findings);
        writer.WriteStartArray("remediation");
        foreach (string command in report.Remediation)
        {
            writer.WriteStringValue(command);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <summary>The <c>findings</c> array, as every JSON the library writes spells it: <c>code</c>, <c>layer</c>, <c>message</c>.</summary>
    internal static void WriteFindings(Utf8JsonWriter writer, System.Collections.Immutable.ImmutableArray<ChainFinding> findings)
    {
        writer.WriteStartArray("findings");
        foreach (ChainFinding finding in findings)
        {
            writer.WriteStartObject();
            writer.WriteString("code", finding.Code);
            writer.WriteNumber("layer", finding.Layer);
            writer.WriteString("message", finding.Message);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }
}
