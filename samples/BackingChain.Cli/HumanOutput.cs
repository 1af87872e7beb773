using System.Globalization;
using System.Text;
using BackingChain;
using BackingChain.Chain;
using BackingChain.Formats.Qcow2;
using BackingChain.Interop;
using BackingChain.Trust;

namespace BackingChain.Cli;

/// <summary>The readable outputs: qemu-img-like facts for <c>info</c>, a tree for <c>check</c>.</summary>
internal static class HumanOutput
{
    public static string Info(ImageChain chain, bool backingChain)
    {
        var text = new StringBuilder();
        for (int i = 0; i < (backingChain ? chain.Layers.Length : 1); i++)
        {
            ChainLayer layer = chain.Layers[i];
            if (i > 0)
            {
                text.Append('\n');
            }

            text.Append(CultureInfo.InvariantCulture, $"image: {layer.Filename}\n");
            text.Append(CultureInfo.InvariantCulture, $"file format: {layer.Format.GetQemuName()} ({TrustReportJson.GetName(layer.FormatSource)})\n");
            text.Append(CultureInfo.InvariantCulture, $"virtual size: {Size(layer.VirtualSize)} ({layer.VirtualSize} bytes)\n");
            if (layer.ActualSize is long actual)
            {
                text.Append(CultureInfo.InvariantCulture, $"disk size: {Size(actual)}\n");
            }

            if (layer.ClusterSize is int cluster)
            {
                text.Append(CultureInfo.InvariantCulture, $"cluster_size: {cluster}\n");
            }

            if (layer.Encrypted)
            {
                text.Append("encrypted: yes\n");
            }

            foreach (ImageReference reference in layer.References)
            {
                string label = reference.Role switch
                {
                    ReferenceRole.BackingFile => "backing file",
                    ReferenceRole.ExternalDataFile => "data file",
                    ReferenceRole.VmdkExtent => "extent",
                    ReferenceRole.VmdkParent => "parent",
                    _ => "parent locator",
                };
                text.Append(CultureInfo.InvariantCulture, $"{label}: {reference.StoredName}");
                if (reference.FullName is not null && reference.FullName != reference.StoredName)
                {
                    text.Append(CultureInfo.InvariantCulture, $" (actual path: {reference.FullName})");
                }

                text.Append('\n');
                if (reference.RecordedFormat is not null && reference.Role == ReferenceRole.BackingFile)
                {
                    text.Append(CultureInfo.InvariantCulture, $"backing file format: {reference.RecordedFormat}\n");
                }
            }

            if (layer.FormatSpecific is Qcow2FormatInfo qcow2)
            {
                text.Append("Format specific information:\n");
                text.Append(CultureInfo.InvariantCulture, $"    compat: {qcow2.Compat}\n");
                text.Append(CultureInfo.InvariantCulture, $"    compression type: {(qcow2.CompressionType == Qcow2CompressionType.Zstd ? "zstd" : "zlib")}\n");
                text.Append(CultureInfo.InvariantCulture, $"    refcount bits: {qcow2.RefcountBits}\n");
            }
        }

        return text.ToString();
    }

    public static string Check(TrustReport report)
    {
        var text = new StringBuilder();
        for (int i = 0; i < report.Layers.Length; i++)
        {
            LayerVerdict verdict = report.Layers[i];
            string indent = i == 0 ? "" : new string(' ', 3 * (i - 1)) + "└─ ";
            text.Append(CultureInfo.InvariantCulture,
                $"{indent}{verdict.Filename}  [{verdict.Format.GetQemuName()}, {TrustReportJson.GetName(verdict.FormatSource)}]  {(verdict.Decision == TrustDecision.Accepted ? "accepted" : "REJECTED")}: {TrustReportJson.GetName(verdict.Reason)}\n");
        }

        foreach (ChainFinding finding in report.Findings)
        {
            text.Append(CultureInfo.InvariantCulture, $"{finding.Code} (layer {finding.Layer}): {finding.Message}\n");
        }

        foreach (string command in report.Remediation)
        {
            text.Append(CultureInfo.InvariantCulture, $"fix: {command}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"verdict: {(report.IsSafe ? "safe" : "unsafe")}\n");
        return text.ToString();
    }

    private static string Size(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes} B")
            : string.Create(CultureInfo.InvariantCulture, $"{value:0.###} {units[unit]}");
    }
}
