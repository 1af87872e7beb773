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
/// Writes an <see cref="UploadInspection"/> as JSON with stable kebab-case names, by hand over
/// <see cref="Utf8JsonWriter"/> (no reflection: trimming- and NativeAOT-safe), with the spellings of
/// <see cref="StableNames"/>.
/// </summary>
/// <remarks>
/// <code>
/// {
///   "verdict": "accepted" | "rejected",
///   "reason": "format-declared" | "probed-with-untrusted-references" | …,
///   "format": "qcow2", "format-source": "declared" | "probed", "probed-format": "qcow2",
///   "length": 196616, "virtual-size": 1048576 | null, "sha256": "…" | null,
///   "references": [ { "role": "backing-file", "name": "base.raw", "backing-format": "raw" | null } ],
///   "report": { …the object of TrustReportJson… }
/// }
/// </code>
/// </remarks>
public static class UploadInspectionJson
{
    /// <summary>Writes the inspection, followed by a newline.</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="inspection">The inspection.</param>
    public static void Write(Stream stream, UploadInspection inspection)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(inspection);
        JsonOutput.Write(stream, inspection, Write);
    }

    /// <summary>Writes the inspection as one JSON object and a newline, with asynchronous writes only (for an HTTP response body).</summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="inspection">The inspection.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the document is written and flushed.</returns>
    public static Task WriteAsync(Stream stream, UploadInspection inspection, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(inspection);
        return JsonOutput.WriteAsync(stream, inspection, Write, cancellationToken);
    }

    /// <summary>Writes the inspection as one JSON object.</summary>
    internal static void Write(Utf8JsonWriter writer, UploadInspection inspection)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(inspection);
        writer.WriteStartObject();
        writer.WriteString("verdict", inspection.Verdict.GetStableName());
        writer.WriteString("reason", inspection.Reason.GetStableName());
        writer.WriteString("format", inspection.Format.GetQemuName());
        writer.WriteString("format-source", inspection.FormatSource.GetStableName());
        writer.WriteString("probed-format", inspection.ProbedFormat.GetQemuName());
        writer.WriteNumber("length", inspection.Length);
        if (inspection.VirtualSize is long virtualSize)
        {
            writer.WriteNumber("virtual-size", virtualSize);
        }
        else
        {
            writer.WriteNull("virtual-size");
        }

        writer.WriteString("sha256", inspection.Sha256);
        writer.WriteStartArray("references");
        foreach (ImageReference reference in inspection.References)
        {
            writer.WriteStartObject();
            writer.WriteString("role", reference.Role.GetStableName());
            writer.WriteString("name", reference.StoredName);
            writer.WriteString("backing-format", reference.RecordedFormat);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WritePropertyName("report");
        TrustReportJson.Write(writer, inspection.Report);
        writer.WriteEndObject();
    }
}
