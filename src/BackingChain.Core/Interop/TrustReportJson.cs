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
    /// <summary>Writes the report, followed by a newline.</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="report">The report.</param>
    public static void Write(Stream stream, TrustReport report) => Write(stream, report, names: null);

    /// <summary>Writes the report, followed by a newline, with its server paths presented as <paramref name="names"/> says.</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="report">The report.</param>
    /// <param name="names">How paths are shown to the reader (<see cref="ImageNameMapping.RelativeTo"/>), or <see langword="null"/> to write them as they are.</param>
    public static void Write(Stream stream, TrustReport report, ImageNameMapping? names)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(report);
        JsonOutput.Write(stream, report, (writer, r) => Write(writer, r, names));
    }

    /// <summary>Writes the report as one JSON object and a newline, with asynchronous writes only (for an HTTP response body).</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="report">The report.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the document is written and flushed.</returns>
    public static Task WriteAsync(Stream stream, TrustReport report, CancellationToken cancellationToken = default) =>
        WriteAsync(stream, report, null, cancellationToken);

    /// <summary>Writes the report as one JSON object and a newline, with asynchronous writes only, its server paths presented as <paramref name="names"/> says.</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="report">The report.</param>
    /// <param name="names">How paths are shown to the reader (<see cref="ImageNameMapping.RelativeTo"/>), or <see langword="null"/> to write them as they are.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the document is written and flushed.</returns>
    public static Task WriteAsync(Stream stream, TrustReport report, ImageNameMapping? names, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(report);
        return JsonOutput.WriteAsync(stream, report, (writer, r) => Write(writer, r, names), cancellationToken);
    }

    private static void WriteReference(Utf8JsonWriter writer, ReferenceDecision reference, Func<string, string> text)
    {
        writer.WriteStartObject();
        writer.WriteString("role", reference.Reference.Role.GetStableName());
        writer.WriteString("name", text(reference.Reference.StoredName));
        writer.WriteString("decision", reference.Outcome.GetStableName());
        writer.WriteString("trusted-by", reference.Basis.GetStableName());
        writer.WriteEndObject();
    }

    /// <summary>Writes the report as one JSON object.</summary>
    /// <param name="writer">The writer.</param>
    /// <param name="report">The report.</param>
    public static void Write(Utf8JsonWriter writer, TrustReport report) => Write(writer, report, names: null);

    /// <summary>Writes the report as one JSON object, its server paths presented as <paramref name="names"/> says.</summary>
    /// <param name="writer">The writer.</param>
    /// <param name="report">The report.</param>
    /// <param name="names">How paths are shown to the reader (<see cref="ImageNameMapping.RelativeTo"/>), or <see langword="null"/> to write them as they are.</param>
    public static void Write(Utf8JsonWriter writer, TrustReport report, ImageNameMapping? names)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(report);
        Func<string, string> text = names?.For(report) ?? AsIs;
        writer.WriteStartObject();
        writer.WriteString("verdict", report.IsSafe ? "safe" : "unsafe");
        writer.WriteString("posture", report.Posture.GetStableName());
        writer.WriteString("reason", report.Reason.GetStableName());
        writer.WriteStartArray("layers");
        foreach (LayerVerdict layer in report.Layers)
        {
            writer.WriteStartObject();
            writer.WriteString("filename", text(layer.FileName));
            writer.WriteString("format", layer.Format.GetQemuName());
            writer.WriteString("format-source", layer.FormatSource.GetStableName());
            writer.WriteString("decision", layer.Decision == TrustDecision.Accepted ? "accepted" : "rejected");
            writer.WriteString("reason", layer.Reason.GetStableName());
            writer.WriteStartArray("references");
            foreach (ReferenceDecision reference in layer.References)
            {
                WriteReference(writer, reference, text);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        if (report.Chain.UnreadLayer is { } unread)
        {
            // The image the walk could not describe: rejected, with what it was read as and why it stopped there.
            writer.WriteStartObject();
            writer.WriteString("filename", text(unread.FileName));
            writer.WriteString("format", unread.Format.GetQemuName());
            writer.WriteString("format-source", unread.FormatSource.GetStableName());
            writer.WriteString("decision", "rejected");
            writer.WriteString("reason", report.Reason.GetStableName());
            writer.WriteString("error", text(unread.Message));
            writer.WriteStartArray("references");
            foreach (ReferenceDecision reference in report.Chain.Decisions)
            {
                if (reference.LayerIndex == report.Layers.Length)
                {
                    WriteReference(writer, reference, text);
                }
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        WriteFindings(writer, report.Findings, text);
        writer.WriteStartArray("remediation");
        foreach (string command in report.Remediation)
        {
            writer.WriteStringValue(text(command));
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <summary>The <c>findings</c> array, as every JSON the library writes spells it: <c>code</c>, <c>layer</c>, <c>message</c>.</summary>
    internal static void WriteFindings(Utf8JsonWriter writer, System.Collections.Immutable.ImmutableArray<ChainFinding> findings, Func<string, string> text)
    {
        writer.WriteStartArray("findings");
        foreach (ChainFinding finding in findings)
        {
            writer.WriteStartObject();
            writer.WriteString("code", finding.Code);
            writer.WriteNumber("layer", finding.LayerIndex);
            writer.WriteString("message", text(finding.Message));
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    /// <summary>Words written as they are, when no mapping is asked for.</summary>
    internal static string AsIs(string text) => text;
}
