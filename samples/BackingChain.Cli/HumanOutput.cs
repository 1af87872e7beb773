using System;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Trust;

namespace BackingChain.Cli;

/// <summary>The readable outputs: qemu-img-like facts for <c>info</c>, a tree for <c>check</c>.</summary>
internal static class HumanOutput
{
    /// <summary>
    /// The lines <c>qemu-img info</c> prints (qemu 7.2, block/qapi.c <c>bdrv_image_info_dump</c>), in its order, with
    /// the format-specific part dumped from the same JSON object <c>--output json</c> writes, as qemu dumps its QAPI object.
    /// </summary>
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

            text.Append(CultureInfo.InvariantCulture, $"image: {Escape(layer.FileName)}\n");
            text.Append(CultureInfo.InvariantCulture, $"file format: {layer.Format.GetQemuName()}\n");
            text.Append(CultureInfo.InvariantCulture, $"virtual size: {Size(layer.VirtualSize)} ({layer.VirtualSize} bytes)\n");
            text.Append(CultureInfo.InvariantCulture, $"disk size: {(layer.ActualSize is long actual ? Size(actual) : "unavailable")}\n");
            if (layer.Encrypted)
            {
                text.Append("encrypted: yes\n");
            }

            if (layer.ClusterSize is int cluster)
            {
                text.Append(CultureInfo.InvariantCulture, $"cluster_size: {cluster}\n");
            }

            if (layer.DirtyFlag == true)
            {
                text.Append("cleanly shut down: no\n");
            }

            // qemu shows the backing file of qcow2/qcow/qed and a VMDK parent; other names appear (if at all) in the format-specific part.
            foreach (ImageReference reference in layer.References)
            {
                // VHD and VHDX parents are backing files to the library but not to qemu-img, which ignores them.
                if (reference.Role != ReferenceRole.BackingFile || layer.Format is ImageFormat.Vpc or ImageFormat.Vhdx)
                {
                    continue;
                }

                text.Append(CultureInfo.InvariantCulture, $"backing file: {Escape(reference.StoredName)}");
                if (reference.FullName is null)
                {
                    text.Append(" (cannot determine actual path)");
                }
                else if (reference.FullName != reference.StoredName)
                {
                    text.Append(CultureInfo.InvariantCulture, $" (actual path: {Escape(reference.FullName)})");
                }

                text.Append('\n');
                if (reference.RecordedFormat is not null)
                {
                    text.Append(CultureInfo.InvariantCulture, $"backing file format: {Escape(reference.RecordedFormat)}\n");
                }

                break;
            }

            if (layer.FormatSpecific is not null)
            {
                using JsonDocument json = JsonDocument.Parse(QemuImgInfoJson.ToJson(layer));
                if (json.RootElement.TryGetProperty("format-specific", out JsonElement specific) && specific.TryGetProperty("data", out JsonElement data))
                {
                    text.Append("Format specific information:\n");
                    DumpQemuObject(text, data, 1);
                }
            }
        }

        return text.ToString();
    }

    /// <summary>qemu's dump_qobject: keys with '-' shown as ' ', four spaces per level, list items as [i].</summary>
    private static void DumpQemuObject(StringBuilder text, JsonElement value, int indentation)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (JsonProperty property in value.EnumerateObject())
                {
                    bool composite = property.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array;
                    text.Append(' ', indentation * 4).Append(Escape(property.Name.Replace('-', ' '))).Append(':').Append(composite ? '\n' : ' ');
                    DumpQemuObject(text, property.Value, indentation + 1);
                    if (!composite)
                    {
                        text.Append('\n');
                    }
                }

                break;
            case JsonValueKind.Array:
                int index = 0;
                foreach (JsonElement item in value.EnumerateArray())
                {
                    bool composite = item.ValueKind is JsonValueKind.Object or JsonValueKind.Array;
                    text.Append(' ', indentation * 4).Append(CultureInfo.InvariantCulture, $"[{index++}]:").Append(composite ? '\n' : ' ');
                    DumpQemuObject(text, item, indentation + 1);
                    if (!composite)
                    {
                        text.Append('\n');
                    }
                }

                break;
            case JsonValueKind.String:
                text.Append(Escape(value.GetString()!));
                break;
            case JsonValueKind.True:
                text.Append("true");
                break;
            case JsonValueKind.False:
                text.Append("false");
                break;
            default:
                text.Append(value.GetRawText());
                break;
        }
    }

    /// <summary>
    /// For <c>info --backing-chain</c>: when the walk stopped at a differencing VHD or VHDX whose parent is named only
    /// by Windows paths (<c>C:\...</c>, <c>.\...</c>), the line that says so; <see langword="null"/> when the walk stopped
    /// for any other reason. Such a parent is never opened as a local path, but the layers above it are worth showing
    /// (qemu-img shows the VHD alone, as it ignores VHD parents).
    /// </summary>
    public static string? UnopenedWindowsParent(ImageChain chain)
    {
        if (chain.Ending != ChainEnding.Refused || chain.Layers.IsEmpty)
        {
            return null;
        }

        int last = chain.Layers.Length - 1;
        ImageReference? parent = null;
        foreach (ReferenceDecision decision in chain.Decisions)
        {
            if (decision.LayerIndex != last)
            {
                continue;
            }

            if (decision.Outcome != ReferenceOutcome.NotFollowed || decision.Reference.Kind != ReferenceKind.WindowsPath
                || decision.Reference.Role != ReferenceRole.BackingFile
                || chain.Layers[last].Format is not (ImageFormat.Vpc or ImageFormat.Vhdx))
            {
                return null;
            }

            parent ??= decision.Reference;
        }

        return parent is null
            ? null
            : $"note: the parent of '{Escape(chain.Layers[last].FileName)}' is the Windows path '{Escape(parent.StoredName)}'; it is not opened, and the chain is not complete";
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
                $"{indent}{Escape(verdict.FileName)}  [{verdict.Format.GetQemuName()}, {verdict.FormatSource.GetStableName()}]  {(verdict.Decision == TrustDecision.Accepted ? "accepted" : "REJECTED")}: {verdict.Reason.GetStableName()}\n");
            foreach (ReferenceDecision reference in verdict.References)
            {
                // The opened backing file is the next line of the tree; anything else a layer names is spelled out.
                if (reference.Outcome == ReferenceOutcome.Opened && ReferenceEquals(reference.Reference, verdict.Layer.Backing))
                {
                    continue;
                }

                text.Append(CultureInfo.InvariantCulture,
                    $"{new string(' ', indent.Length)}   names {reference.Reference.Role.GetStableName()} '{Escape(reference.Reference.StoredName)}': {reference.Outcome.GetStableName()} (trusted by: {reference.Basis.GetStableName()})\n");
            }
        }

        foreach (ChainFinding finding in report.Findings)
        {
            text.Append(CultureInfo.InvariantCulture, $"{finding.Code} (layer {finding.LayerIndex}): {Escape(finding.Message)}\n");
        }

        foreach (string command in report.Remediation)
        {
            text.Append(CultureInfo.InvariantCulture, $"fix: {Escape(command)}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"verdict: {(report.IsSafe ? "safe" : "unsafe")} ({report.Reason.GetStableName()}; {report.Posture.GetStableName()} posture)\n");
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

    /// <summary>qemu's size_to_str: the unit chosen so the number stays below 1000, printed with three significant digits (%0.3g).</summary>
    private static string Size(long bytes)
    {
        string[] suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        double scaled = bytes / (1000 / 1024.0);

        // frexp's exponent: scaled = m * 2^e with m in [0.5, 1).
        int exponent = bytes <= 0 ? 0 : Math.ILogB(scaled) + 1;
        int unit = Math.Clamp((exponent - 1) / 10, 0, suffixes.Length - 1);
        double value = bytes / Math.Pow(2, unit * 10);
        return string.Create(CultureInfo.InvariantCulture, $"{value.ToString("G3", CultureInfo.InvariantCulture)} {suffixes[unit]}B");
    }
}
