using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// Comments, XML docs and the repository's Markdown stand alone: a reader — or a package user reading XML docs — never
/// meets a reference to a Markdown file the repository does not hold.
/// </summary>
public sealed partial class StandaloneDocsTests
{
    [Fact]
    public void Every_markdown_file_a_comment_or_doc_names_is_in_the_repository()
    {
        string root = RepositoryRoot();
        var missing = new System.Collections.Generic.List<string>();
        string[] roots = ["src", "samples", "tests", "benchmarks", "docs"];
        var files = roots.Select(r => Path.Combine(root, r)).Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories))
            // Code and the prose written for readers; scripts are left out because they name the reports they write.
            .Where(f => f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".md", StringComparison.Ordinal))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Append(Path.Combine(root, "README.md"));

        foreach (string file in files)
        {
            string text = File.ReadAllText(file);
            foreach (Match match in MarkdownName().Matches(text))
            {
                string name = match.Value;
                bool found = Directory.EnumerateFiles(root, Path.GetFileName(name), SearchOption.AllDirectories)
                    .Any(f => !f.Contains($"{Path.DirectorySeparatorChar}artifacts{Path.DirectorySeparatorChar}", StringComparison.Ordinal));
                if (!found)
                {
                    missing.Add($"{Path.GetRelativePath(root, file)}: {name}");
                }
            }
        }

        Assert.True(missing.Count == 0, "references to files not in the repository:\n" + string.Join("\n", missing.Distinct()));
    }

    private static string RepositoryRoot()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "BackingChain.Core.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new InvalidOperationException("repository root not found");
    }

    // A file name ending in .md as prose and comments write it (docs/limits.md, FUZZING.md); not a pattern such as
    // *-report-github.md, which names the files a tool writes.
    [GeneratedRegex(@"(?<![*-])\b[A-Za-z][A-Za-z0-9_./-]*\.md\b")]
    private static partial Regex MarkdownName();
}
