using System;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Sources;

/// <summary>
/// The CLI published with NativeAOT, reading images over http from nginx: the publish must be free of trimming and
/// AOT warnings, and the binary must print what qemu-img prints. Minutes of publishing, so only with
/// <c>BACKINGCHAIN_AOT_TESTS=1</c>.
/// </summary>
public sealed class HttpAotTests
{
    [AotHttpFact]
    public void The_nativeaot_cli_reads_a_chain_over_http_through_redirects_as_qemu_img_does()
    {
        using var output = new ScratchDirectory();
        string cli = Publish(output.Path);
        using var nginx = new Nginx();
        string images = nginx.Folder("images");
        QemuImg.Run(images, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(images, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "mid.qcow2");
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", nginx.Url("hop2/mid.qcow2"), "-F", "qcow2", "top.qcow2", "1M");

        foreach (string url in new[] { nginx.Url("images/mid.qcow2"), nginx.Url("images/top.qcow2"), nginx.Url("moved/top.qcow2") })
        {
            JsonNode expected = QemuImg.Info(nginx.Root, url, backingChain: true);
            (int exit, string stdout, string stderr) = Run(cli, nginx.Root, "info", "--output", "json", "--backing-chain", url);
            Assert.True(exit == 0, $"{url}: exit {exit}: {stderr}");
            var differences = JsonComparison.Differences(expected, JsonNode.Parse(stdout)!);
            Assert.True(differences.Count == 0, url + "\n" + string.Join("\n", differences));
        }

        // The trust verdict in the same binary: redirects within the trusted host are followed, one to the other host
        // is refused by name.
        (int trusted, string trustedOut, string trustedErr) = Run(cli, nginx.Root, "check", "--output", "json", "--trust-url", nginx.Url(""), nginx.Url("images/top.qcow2"));
        Assert.True(trusted == 0, trustedOut + trustedErr);
        (int refused, _, string refusedErr) = Run(cli, nginx.Root, "check", "--trust-url", nginx.Url(""), nginx.Url("moved/mid.qcow2"));
        Assert.Equal(1, refused);
        Assert.Contains($"redirected to '{nginx.OtherHostUrl("images/mid.qcow2")}', which the trust policy does not allow", refusedErr, StringComparison.Ordinal);
    }

    private static string Publish(string output)
    {
        string repository = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(repository, "BackingChain.Core.sln")))
        {
            repository = Path.GetDirectoryName(repository) ?? throw new InvalidOperationException("the repository root was not found");
        }

        // Source Link is off: it only stamps repository URLs into the binary, and warns in clones without a remote.
        (int exit, string stdout, string stderr) = Run("dotnet", repository, "publish", Path.Combine("samples", "BackingChain.Cli"),
            "-r", "linux-x64", "-c", "Release", "-p:PublishAot=true", "-p:EnableSourceLink=false", "-p:EnableSourceControlManagerQueries=false", "-o", output);
        Assert.True(exit == 0, stdout + stderr);
        string[] warnings = (stdout + stderr).Split('\n').Where(l => l.Contains(" warning ", StringComparison.OrdinalIgnoreCase) || l.Contains(": warning", StringComparison.OrdinalIgnoreCase)).ToArray();
        Assert.True(warnings.Length == 0, string.Join("\n", warnings));
        return Path.Combine(output, "backing-chain");
    }

    private static (int ExitCode, string StandardOutput, string StandardError) Run(string program, string workingDirectory, params string[] arguments)
    {
        ProcessResult result = ProcessRunner.Run(program, arguments, workingDirectory, timeout: TimeSpan.FromMinutes(10));
        return (result.ExitCode, result.StandardOutput, result.StandardError);
    }

    /// <summary>Runs only with <c>BACKINGCHAIN_AOT_TESTS=1</c>, and where nginx and qemu-img's curl driver are installed.</summary>
    private sealed class AotHttpFactAttribute : FactAttribute
    {
        public AotHttpFactAttribute()
        {
            string? reason = Environment.GetEnvironmentVariable("BACKINGCHAIN_AOT_TESTS") == "1" ? new NginxQemuFactAttribute().Skip
                : "publishes the CLI with NativeAOT (minutes); set BACKINGCHAIN_AOT_TESTS=1 to run it";
            if (reason is not null)
            {
                Skip = reason;
            }
        }
    }
}
