using System.Collections.Immutable;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;
using BackingChain.Interop;

namespace BackingChain.Cli;

/// <summary>The outputs of <c>backing-chain domain</c>: per disk, the explicit layers, where libvirt probes, the verdict on the whole chain, and drift.</summary>
internal static class DomainOutput
{
    /// <summary>Exit 0 only when every disk's chain is safe and its XML matches the images.</summary>
    public static bool IsClean(ImmutableArray<LibvirtDiskChain> disks)
    {
        foreach (LibvirtDiskChain disk in disks)
        {
            if (!IsSafe(disk) || !disk.Drift.IsEmpty)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The judge accepts the chain, and libvirt starts the disk with that chain (a refusal or another chain is never safe).</summary>
    public static bool IsSafe(LibvirtDiskChain disk) =>
        disk.Report.IsSafe && disk.Prediction.Outcome is LibvirtOutcome.Starts or LibvirtOutcome.NotPredicted;

    public static string GetName(LibvirtOutcome outcome) => outcome switch
    {
        LibvirtOutcome.Starts => "starts",
        LibvirtOutcome.StartsWithOtherChain => "starts-with-other-chain",
        LibvirtOutcome.Refused => "refused",
        _ => "not-predicted",
    };

    public static string GetName(LibvirtDriftKind kind) => kind switch
    {
        LibvirtDriftKind.LayerMissing => "layer-missing",
        LibvirtDriftKind.FormatMismatch => "format-mismatch",
        LibvirtDriftKind.BackingNameMismatch => "backing-name-mismatch",
        LibvirtDriftKind.BackingFormatMismatch => "backing-format-mismatch",
        LibvirtDriftKind.ExtraLayer => "extra-layer",
        LibvirtDriftKind.IgnoredByLibvirt => "ignored-by-libvirt",
        _ => "missing-layer",
    };

    public static string Human(ImmutableArray<LibvirtDiskChain> disks)
    {
        var text = new StringBuilder();
        int drifting = 0;
        foreach (LibvirtDiskChain disk in disks)
        {
            drifting += disk.Drift.IsEmpty ? 0 : 1;
            text.Append(CultureInfo.InvariantCulture, $"disk {Escape(disk.Target ?? "(no target)")}: {disk.Layers.Length} explicit layer(s), ");
            text.Append(disk.IsTerminated
                ? "ends with <backingStore/>: nothing is probed\n"
                : string.Create(CultureInfo.InvariantCulture, $"no <backingStore/>: libvirt reads [{disk.ProbeStart}] and walks on from it\n"));
            for (int i = 0; i < disk.Layers.Length; i++)
            {
                LibvirtDiskLayer layer = disk.Layers[i];
                text.Append(CultureInfo.InvariantCulture, $"  [{i}] {Escape(layer.ToString())}  [{Escape(layer.Format ?? "raw (none declared)")}, {Escape(layer.SourceType)}]  explicit\n");
            }

            foreach (string line in HumanOutput.Check(disk.Report).Split('\n', System.StringSplitOptions.RemoveEmptyEntries))
            {
                text.Append("    ").Append(line).Append('\n');
            }

            foreach (LibvirtDrift drift in disk.Drift)
            {
                text.Append(CultureInfo.InvariantCulture, $"  drift {GetName(drift.Kind)} at [{drift.LayerIndex}]: {Escape(drift.Message)}\n");
            }

            LibvirtPrediction libvirt = disk.Prediction;
            text.Append(CultureInfo.InvariantCulture, $"  libvirt {LibvirtPrediction.LibvirtVersion}: {GetName(libvirt.Outcome)}{(libvirt.Reason is null ? "" : ": " + Escape(libvirt.Reason))}\n");
            for (int i = 0; i < libvirt.Layers.Length; i++)
            {
                LibvirtPredictedLayer layer = libvirt.Layers[i];
                text.Append(CultureInfo.InvariantCulture, $"    [{i}] {Escape(layer.Source)}  [{Escape(layer.Format)}]  {(layer.IsExplicit ? "explicit" : "found by libvirt")}\n");
            }

            foreach (BackingChain.Chain.ChainFinding finding in libvirt.Findings)
            {
                text.Append(CultureInfo.InvariantCulture, $"    {finding.Code} at [{finding.LayerIndex}]: {Escape(finding.Message)}\n");
            }

            text.Append(CultureInfo.InvariantCulture, $"  {(IsSafe(disk) ? "safe" : "unsafe")}{(disk.UnsafeReason is null ? "" : ": " + Escape(disk.UnsafeReason))}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"verdict: {(IsClean(disks) ? "safe" : "unsafe")} ({disks.Length} disk(s), {drifting} with drift)\n");
        return text.ToString();
    }

    public static void WriteJson(Stream stream, ImmutableArray<LibvirtDiskChain> disks)
    {
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("verdict", IsClean(disks) ? "safe" : "unsafe");
            writer.WriteStartArray("disks");
            foreach (LibvirtDiskChain disk in disks)
            {
                writer.WriteStartObject();
                writer.WriteString("target", disk.Target);
                writer.WriteString("device", disk.Device);
                writer.WriteString("ending", disk.IsTerminated ? "terminated" : "probed");
                if (disk.ProbeStart is int start)
                {
                    writer.WriteNumber("probe-start", start);
                }
                else
                {
                    writer.WriteNull("probe-start");
                }

                writer.WriteBoolean("safe", IsSafe(disk));
                writer.WriteString("reason", disk.UnsafeReason);
                writer.WriteStartArray("layers");
                foreach (LibvirtDiskLayer layer in disk.Layers)
                {
                    writer.WriteStartObject();
                    writer.WriteString("type", layer.SourceType);
                    writer.WriteString("format", layer.Format);
                    writer.WriteString("source", layer.ToString());
                    if (layer.Index is int index)
                    {
                        writer.WriteNumber("index", index);
                    }

                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                writer.WritePropertyName("chain");
                TrustReportJson.Write(writer, disk.Report);

                WriteLibvirt(writer, disk.Prediction);
                writer.WriteStartArray("drift");
                foreach (LibvirtDrift drift in disk.Drift)
                {
                    writer.WriteStartObject();
                    writer.WriteString("kind", GetName(drift.Kind));
                    writer.WriteNumber("layer", drift.LayerIndex);
                    writer.WriteString("expected", drift.Expected);
                    writer.WriteString("actual", drift.Actual);
                    writer.WriteString("message", drift.Message);
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        stream.WriteByte((byte)'\n');
    }

    private static void WriteLibvirt(Utf8JsonWriter writer, LibvirtPrediction libvirt)
    {
        writer.WriteStartObject("libvirt");
        writer.WriteString("version", LibvirtPrediction.LibvirtVersion);
        writer.WriteString("outcome", GetName(libvirt.Outcome));
        writer.WriteString("reason", libvirt.Reason);
        writer.WriteBoolean("terminated", libvirt.IsTerminated);
        writer.WriteStartArray("layers");
        foreach (LibvirtPredictedLayer layer in libvirt.Layers)
        {
            writer.WriteStartObject();
            writer.WriteString("source", layer.Source);
            writer.WriteString("format", layer.Format);
            writer.WriteBoolean("explicit", layer.IsExplicit);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        FindingsJson.Write(writer, "findings", libvirt.Findings);
        writer.WriteEndObject();
    }

    private static string Escape(string text) => HumanOutput.Escape(text);
}
