using System;
using System.IO;
using System.Text.RegularExpressions;
using BackingChain.Chain;
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
    public void The_library_built_from_this_clone_has_the_version_the_readme_installs()
    {
        // Tags need not travel with a clone: the version must come from the files themselves.
        string readme = File.ReadAllText(Path.Combine(RepositoryRoot, "README.md"));
        Match named = Regex.Match(readme, @"release candidate \(`(?<version>[0-9][^`]*)`\)");
        Assert.True(named.Success, "the README names no version");
        string built = System.Reflection.CustomAttributeExtensions
            .GetCustomAttribute<System.Reflection.AssemblyInformationalVersionAttribute>(typeof(ImageChain).Assembly)!.InformationalVersion;

        Assert.Equal(named.Groups["version"].Value, built.Split('+')[0]);
    }

    [Fact]
    public void Readme_snippets_are_the_compiled_sample_code()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryRoot, "README.md"));
        string sample = File.ReadAllText(Path.Combine(RepositoryRoot, "samples", "QuickStart", "Program.cs"));

        MatchCollection inReadme = ReadmeSnippet().Matches(readme);
        var inSample = new System.Collections.Generic.Dictionary<string, string>();
        foreach (Match match in SampleSnippet().Matches(sample))
        {
            inSample[match.Groups["name"].Value] = Dedent(match.Groups["code"].Value);
        }

        Assert.True(inReadme.Count >= 5, $"README shows {inReadme.Count} snippets");
        Assert.Equal(inSample.Count, inReadme.Count);
        foreach (Match match in inReadme)
        {
            string name = match.Groups["name"].Value;
            Assert.True(inSample.ContainsKey(name), $"README snippet '{name}' is not in the sample");
            Assert.Equal(inSample[name], match.Groups["code"].Value.Trim('\n'));
        }
    }

    [QemuImgFact]
    public void The_quick_start_sample_runs_on_a_chain_made_by_qemu_img()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.raw", "-F", "raw", "top.qcow2");
        byte[] bytes = File.ReadAllBytes(dir["top.qcow2"]);
        Array.Clear(bytes, 0x48, 8); // drop the recorded backing format
        File.WriteAllBytes(dir["top.qcow2"], bytes);

        (int inspect, string inspectOut, _) = QuickStart(dir.Path, "inspect", "top.qcow2");
        (int check, string checkOut, _) = QuickStart(dir.Path, "check", "top.qcow2");
        (int fix, _, _) = QuickStart(dir.Path, "fix", "top.qcow2", "base.raw", "raw");
        (int xml, string xmlOut, _) = QuickStart(dir.Path, "xml", "top.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", "-o", "size=1M", "evil.qcow2");
        (int gateSafe, string gateSafeOut, _) = QuickStart(dir.Path, "gate", "base.raw");
        (int gateEvil, string gateEvilOut, _) = QuickStart(dir.Path, "gate", "evil.qcow2");

        Assert.Equal(0, inspect);
        Assert.Contains("backing file: base.raw (format not recorded)", inspectOut, StringComparison.Ordinal);
        Assert.Equal(0, check);
        Assert.Contains("fix with: qemu-img rebase -f qcow2 -F raw -b base.raw -u top.qcow2", checkOut, StringComparison.Ordinal);
        Assert.Equal(0, fix);
        Assert.Equal("raw", (string)QemuImg.Info(dir.Path, "top.qcow2")["backing-filename-format"]!);
        Assert.Equal(0, xml);
        Assert.Contains("<backingStore />", xmlOut, StringComparison.Ordinal);
        Assert.Equal(0, gateSafe);
        Assert.Contains("raw (Probed), virtual size 1048576: accepted (", gateSafeOut, StringComparison.Ordinal);
        Assert.Equal(1, gateEvil);
        Assert.Contains("names BackingFile '/etc/passwd' (AbsolutePath)", gateEvilOut, StringComparison.Ordinal);
    }

    private static (int ExitCode, string StandardOutput, string StandardError) QuickStart(string workingDirectory, params string[] arguments)
    {
        ProcessResult result = ProcessRunner.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "QuickStart.dll"), .. arguments], workingDirectory);
        return (result.ExitCode, result.StandardOutput, result.StandardError);
    }

    private static string Dedent(string code)
    {
        string[] lines = code.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            lines[i] = lines[i].StartsWith("    ", StringComparison.Ordinal) ? lines[i][4..] : lines[i];
        }

        return string.Join('\n', lines).Trim('\n');
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

    [GeneratedRegex(@"<!-- snippet: (?<name>[\w-]+) -->\s*```csharp\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex ReadmeSnippet();

    [GeneratedRegex(@"// snippet: (?<name>[\w-]+)\n(?<code>.*?)    // end snippet", RegexOptions.Singleline)]
    private static partial Regex SampleSnippet();
}
