using System;
using System.IO;
using System.Text.Encodings.Web;
using System.Text.Json;
using BackingChain.Chain;
using BackingChain.Trust;

namespace BackingChain.Interop;

/// <summary>
/// Writes a <see cref="TrustReport"/> as the JSON of <c>backing-chain check --output json</c> (DESIGN.md):
/// <c>verdict</c>, <c>layers</c>, <c>findings</c>, <c>remediation</c>.
/// </summary>
public static class TrustReportJson
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        IndentSize = 4,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

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
        _ => "reference-unreachable",
    };

    /// <summary>Writes the report, followed by a newline.</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="report">The report.</param>
    public static void Write(Stream stream, TrustReport report)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(report);
        using (var writer = new Utf8JsonWriter(stream, WriterOptions))
        {
            Write(writer, report);
        }

        stream.WriteByte((byte)'\n');
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
        writer.WriteStartArray("layers");
        foreach (LayerVerdict layer in report.Layers)
        {
            writer.WriteStartObject();
            writer.WriteString("filename", layer.Filename);
            writer.WriteString("format", layer.Format.GetQemuName());
            writer.WriteString("format-source", GetName(layer.FormatSource));
            writer.WriteString("decision", layer.Decision == TrustDecision.Accepted ? "accepted" : "rejected");
            writer.WriteString("reason", GetName(layer.Reason));
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteStartArray("findings");
        foreach (ChainFinding finding in report.Findings)
        {
            writer.WriteStartObject();
            writer.WriteString("code", finding.Code);
            writer.WriteNumber("layer", finding.Layer);
            writer.WriteString("message", finding.Message);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteStartArray("remediation");
        foreach (string command in report.Remediation)
        {
            writer.WriteStringValue(command);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }
}
