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

            text.Append(CultureInfo.InvariantCulture, $"image: {Escape(layer.Filename)}\n");
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
                text.Append(CultureInfo.InvariantCulture, $"{label}: {Escape(reference.StoredName)}");
                if (reference.FullName is not null && reference.FullName != reference.StoredName)
                {
                    text.Append(CultureInfo.InvariantCulture, $" (actual path: {Escape(reference.FullName)})");
                }

                text.Append('\n');
                if (reference.RecordedFormat is not null && reference.Role == ReferenceRole.BackingFile)
                {
                    text.Append(CultureInfo.InvariantCulture, $"backing file format: {Escape(reference.RecordedFormat)}\n");
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

    /// <summary>The deepest indentation of the check tree; deeper layers say their depth instead, so the output grows linearly.</summary>
    private const int MaxIndentLevels = 8;

    public static string Check(TrustReport report)
    {
        var text = new StringBuilder();
        for (int i = 0; i < report.Layers.Length; i++)
        {
            LayerVerdict verdict = report.Layers[i];
            string indent = i == 0 ? "" : i - 1 < MaxIndentLevels
                ? new string(' ', 3 * (i - 1)) + "└─ "
                : string.Create(CultureInfo.InvariantCulture, $"{new string(' ', 3 * MaxIndentLevels)}└─ [{i}] ");
            text.Append(CultureInfo.InvariantCulture,
                $"{indent}{Escape(verdict.Filename)}  [{verdict.Format.GetQemuName()}, {TrustReportJson.GetName(verdict.FormatSource)}]  {(verdict.Decision == TrustDecision.Accepted ? "accepted" : "REJECTED")}: {TrustReportJson.GetName(verdict.Reason)}\n");
            foreach (ReferenceDecision reference in verdict.References)
            {
                // The opened backing file is the next line of the tree; anything else a layer names is spelled out.
                if (reference.Outcome == ReferenceOutcome.Opened && ReferenceEquals(reference.Reference, verdict.Layer.Backing))
                {
                    continue;
                }

                text.Append(CultureInfo.InvariantCulture,
                    $"{new string(' ', indent.Length)}   names {TrustReportJson.GetName(reference.Reference.Role)} '{Escape(reference.Reference.StoredName)}': {TrustReportJson.GetName(reference.Outcome)} (trusted by: {TrustReportJson.GetName(reference.Basis)})\n");
            }
        }

        foreach (ChainFinding finding in report.Findings)
        {
            text.Append(CultureInfo.InvariantCulture, $"{finding.Code} (layer {finding.Layer}): {Escape(finding.Message)}\n");
        }

        foreach (string command in report.Remediation)
        {
            text.Append(CultureInfo.InvariantCulture, $"fix: {Escape(command)}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"verdict: {(report.IsSafe ? "safe" : "unsafe")} ({TrustReportJson.GetName(report.Reason)}; {TrustReportJson.GetName(report.Posture)} posture)\n");
        return text.ToString();
    }

    /// <summary>
    /// Names come from images, so from whoever wrote them: control characters (newlines, escape sequences) would let
    /// a name forge lines such as <c>verdict: safe</c> or repaint the terminal. They are shown as <c>\xNN</c> /
    /// <c>\uNNNN</c>, and a backslash as <c>\\</c>, so the escaped text is unambiguous. JSON and XML escape on their own.
    /// </summary>
    public static string Escape(string text)
    {
        bool clean = true;
        foreach (char c in text)
        {
            if (c == '\\' || NeedsEscape(c))
            {
                clean = false;
                break;
            }
        }

        if (clean)
        {
            return text;
        }

        var escaped = new StringBuilder(text.Length + 16);
        foreach (char c in text)
        {
            if (c == '\\')
            {
                escaped.Append(@"\\");
            }
            else if (c < 0x100 && NeedsEscape(c))
            {
                escaped.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            }
            else if (NeedsEscape(c))
            {
                escaped.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            }
            else
            {
                escaped.Append(c);
            }
        }

        return escaped.ToString();
    }

    // C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional overrides that reorder what is shown.
    private static bool NeedsEscape(char c) => char.IsControl(c) || c is '\u2028' or '\u2029' or (>= '\u202a' and <= '\u202e') or (>= '\u2066' and <= '\u2069');

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
