using System;
using System.IO;
using System.IO.Compression;
using System.Linq;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Packaging;

/// <summary>
/// What ships is what is tested: pack the library, add it to a fresh console project with the README's install line
/// from a local folder feed, build it and run it on a chain made with qemu-img.
/// </summary>
public sealed class PackageConsumptionTests
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

    private static string Dotnet(string workingDirectory, params string[] arguments)
    {
        // The consumer is a stranger's project: none of this repository's build settings apply to it.
        var environment = new System.Collections.Generic.Dictionary<string, string>
        {
            ["CI"] = "false",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
        };
        return ProcessRunner.Run("dotnet", arguments, workingDirectory, environment: environment, timeout: TimeSpan.FromMinutes(8))
            .Require($"dotnet {string.Join(' ', arguments)}");
    }

    [LongQemuImgFact]
    public void The_packed_library_restores_from_a_folder_feed_builds_and_runs()
    {
        using var dir = new ScratchDirectory();
        string feed = dir["feed"];
        string version = "0.0.0-consumer." + Guid.NewGuid().ToString("N")[..12];
        Dotnet(RepositoryRoot, "pack", "src/BackingChain.Core", "-c", "Release", "-o", feed,
            "--artifacts-path", dir["artifacts"], $"-p:Version={version}");

        string package = Path.Combine(feed, $"BackingChain.Core.{version}.nupkg");
        Assert.True(File.Exists(package), "no .nupkg was produced");
        Assert.True(File.Exists(Path.ChangeExtension(package, ".snupkg")), "no .snupkg was produced");
        using (ZipArchive zip = ZipFile.OpenRead(package))
        {
            string[] entries = zip.Entries.Select(e => e.FullName).ToArray();
            Assert.Contains("README.md", entries);
            Assert.Contains("lib/net10.0/BackingChain.Core.dll", entries);
            Assert.Contains("lib/net10.0/BackingChain.Core.xml", entries);
        }

        string app = dir["app"];
        Directory.CreateDirectory(app);
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="under-test" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
              </PropertyGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using BackingChain;
            using BackingChain.Chain;
            using BackingChain.Trust;

            TrustReport report = await new ImageChainResolver().CheckAsync(args[0], ImageFormat.Qcow2);
            ImageChain chain = report.Chain;
            Console.WriteLine($"{chain.Layers.Length} {string.Join(",", chain.Layers.Select(l => l.Format.GetQemuName()))} {(report.IsSafe ? "safe" : "unsafe")}");
            """);
        // Keep the repository's Directory.Build.props and central versions away from the stranger's project.
        File.WriteAllText(Path.Combine(app, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(app, "Directory.Packages.props"), "<Project />");

        // The package is added with the README's own install line, so the README works as written.
        string install = File.ReadLines(Path.Combine(RepositoryRoot, "README.md"))
            .Single(l => l.StartsWith("dotnet add package BackingChain.Core", StringComparison.Ordinal));
        Dotnet(app, install.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..]);
        Assert.Contains($"Include=\"BackingChain.Core\" Version=\"{version}\"", File.ReadAllText(Path.Combine(app, "app.csproj")), StringComparison.Ordinal);

        QemuImg.Run(app, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(app, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");

        string output = Dotnet(app, "run", "--", "top.qcow2");

        Assert.Equal("2 qcow2,raw safe", output.Trim());
    }
}
