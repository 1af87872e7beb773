using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace BackingChain.Formats.Vmdk;

/// <summary>
/// The descriptor a monolithicSparse or streamOptimized file carries inside itself. qemu 7.2 reads only CID,
/// parentCID and parentFileNameHint from it and treats the file as its own single extent, but other readers of the
/// same file (VMware's tools, converters, image inspectors) follow its extent lines. An image from someone else
/// must therefore describe nothing but itself there: the untrusted-image posture refuses one whose embedded
/// descriptor names another file, another kind of extent, or more than one extent.
/// </summary>
internal static class VmdkEmbeddedDescriptor
{
    /// <summary>The access words that begin an extent line (qemu opens only RW ones; VMware honours all three).</summary>
    private static readonly string[] AccessWords = ["RW", "RDONLY", "NOACCESS"];

    /// <summary>Enough to say what is wrong; a descriptor of a million bad lines does not make a million findings.</summary>
    private const int MaxProblems = 8;

    /// <summary>
    /// Adds one problem per rule the embedded descriptor breaks. Every line of <paramref name="text"/> is looked at,
    /// including lines after a NUL: qemu stops at the NUL, a tool reading the whole descriptor area does not.
    /// </summary>
    /// <param name="text">The descriptor area of the file (qemu's window at 0x200, or what the header points at).</param>
    /// <param name="capacitySectors">The image's capacity from its sparse header.</param>
    /// <param name="problems">Where the problems go.</param>
    public static void NoteProblems(ReadOnlySpan<byte> text, ulong capacitySectors, List<string> problems)
    {
        int extents = 0;
        int first = problems.Count;
        int lineStart = 0;
        for (int i = 0; i <= text.Length && problems.Count - first < MaxProblems; i++)
        {
            if (i < text.Length && text[i] is not ((byte)'\n' or 0))
            {
                continue;
            }

            ReadOnlySpan<byte> bytes = text[lineStart..i];
            lineStart = i + 1;
            if (bytes.IsEmpty)
            {
                continue;
            }

            string line = Encoding.ASCII.GetString(bytes).Trim(' ', '\t', '\r');
            if (line.StartsWith("createType", StringComparison.Ordinal))
            {
                string type = Quoted(line) ?? line;
                if (type is not ("monolithicSparse" or "streamOptimized"))
                {
                    problems.Add($"the embedded VMDK descriptor has createType \"{Shorten(type)}\", which describes other files than the image itself");
                }

                continue;
            }

            int quote = line.IndexOf('"', StringComparison.Ordinal);
            string[] words = (quote < 0 ? line : line[..quote]).Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0 || Array.IndexOf(AccessWords, words[0]) < 0)
            {
                continue;
            }

            extents++;
            string? name = Quoted(line);
            if (words.Length != 3 || name is null || !ulong.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong sectors))
            {
                problems.Add($"the embedded VMDK descriptor has an extent line that cannot be read: \"{Shorten(line)}\"");
                continue;
            }

            if (words[2] != "SPARSE")
            {
                problems.Add($"the embedded VMDK descriptor names a {Shorten(words[2])} extent (\"{Shorten(name)}\"); a sparse file is its own SPARSE extent");
            }

            if (name.Length == 0 || name.Contains('/', StringComparison.Ordinal) || name is "." or "..")
            {
                problems.Add($"the embedded VMDK descriptor names the extent file \"{Shorten(name)}\", which is not the image itself");
            }

            if (sectors != capacitySectors)
            {
                problems.Add($"the embedded VMDK descriptor's extent has {sectors} sectors but the image has {capacitySectors}");
            }
        }

        if (extents > 1)
        {
            problems.Add($"the embedded VMDK descriptor lists {(problems.Count - first >= MaxProblems ? "at least " : "")}{extents} extents; a monolithic image is its own single extent");
        }
    }

    /// <summary>The text between the first two double quotes, or <see langword="null"/>.</summary>
    private static string? Quoted(string line)
    {
        int open = line.IndexOf('"', StringComparison.Ordinal);
        int close = open < 0 ? -1 : line.IndexOf('"', open + 1);
        return close < 0 ? null : line[(open + 1)..close];
    }

    /// <summary>Keeps a finding short whatever the file holds.</summary>
    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "…";
}
