using System;
using System.IO;
using System.Text.RegularExpressions;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>The README's examples are the compiled samples, and its set-up command runs.</summary>
public sealed partial class ReadmeTests
{
    private static string RepositoryRoot
    {
        get
        {
            string? dir = AppContext.BaseDirectory;
            while (dir is not null && !File.Exists(Path.Combine(dir, "BackingChain.Core.sln")))
            {
                dir = Path.GetDirectoryName(dir);
            }

            return dir ?? throw new InvalidOperationException("repository root not found");
        }
    }

    [Fact]
    public void Readme_snippets_are_the_compiled_sample_code()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryRoot, "README.md"));
        string sample = File.ReadAllText(Path.Combine(RepositoryRoot, "samples", "QuickStart", "Program.cs"));

        Match inReadme = ReadmeSnippet().Match(readme);
        Match inSample = SampleSnippet().Match(sample);

        Assert.True(inReadme.Success, "README has no check-chain snippet");
        Assert.True(inSample.Success, "the sample has no check-chain snippet");
        Assert.Equal(inSample.Groups["code"].Value.Trim(), inReadme.Groups["code"].Value.Trim());
    }

    [QemuImgFact]
    public void The_demo_chain_is_safe_when_its_top_format_is_declared()
    {
        (int declared, string output, _) = CliRunner.Run(RepositoryRoot, "check", "-f", "qcow2", "samples/demo/top.qcow2");
        (int probed, _, _) = CliRunner.Run(RepositoryRoot, "check", "samples/demo/top.qcow2");

        Assert.Equal(0, declared);
        Assert.Contains("verdict: safe", output, StringComparison.Ordinal);
        Assert.Equal(1, probed);
        Qcow2ConformanceTests.AssertSameInfo(RepositoryRoot, "samples/demo/top.qcow2", backingChain: true);
    }

    [GeneratedRegex(@"<!-- snippet: check-chain -->\s*```csharp\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex ReadmeSnippet();

    [GeneratedRegex(@"// snippet: check-chain\n(?<code>.*?)// end snippet", RegexOptions.Singleline)]
    private static partial Regex SampleSnippet();
}
