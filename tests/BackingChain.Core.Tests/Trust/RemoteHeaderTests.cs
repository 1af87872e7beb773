using System;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Trust;

/// <summary>
/// Bytes from another machine naming this machine's files are never the administrator's word: whatever the posture,
/// a header read over HTTP may name only what the untrusted-image posture would let it name.
/// </summary>
public sealed class RemoteHeaderTests
{
    [NginxFact]
    public void A_remote_header_naming_a_local_file_is_refused_in_the_host_posture_and_the_file_is_never_touched()
    {
        using var nginx = new Nginx();
        using var local = new ScratchDirectory();
        QemuImg.Run(local.Path, "create", "-q", "-f", "raw", "shadow.raw", "1M");
        string images = nginx.Folder("images");
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", local["shadow.raw"], "-F", "raw", "x.qcow2", "1M");
        string url = nginx.Url("images/x.qcow2");

        // The declared format and the recorded one are the host's word for a local file; from a server, they are not.
        (int check, string json, string checkError) = CliRunner.Run(local.Path, "check", "-f", "qcow2", "--output", "json", url);
        Assert.True(check == 1, json + checkError);
        JsonNode report = JsonNode.Parse(json)!;
        Assert.Equal(("unsafe", "host", "reference-not-trusted"), ((string?)report["verdict"], (string?)report["posture"], (string?)report["reason"]));
        Assert.Equal("refused", (string?)report["layers"]![0]!["references"]![0]!["decision"]);

        // xml never writes a file a remote header chose.
        (int xml, string disk, _) = CliRunner.Run(local.Path, "xml", "-f", "qcow2", url);
        Assert.NotEqual(0, xml);
        Assert.DoesNotContain("shadow.raw", disk, StringComparison.Ordinal);

        // A trusted root holds it: then the untrusted posture would let the header name it, and so does the host's.
        (int rooted, string rootedJson, string rootedError) = CliRunner.Run(local.Path, "check", "-f", "qcow2", "--trust-root", local.Path, "--output", "json", url);
        Assert.True(rooted == 0, rootedJson + rootedError);

        if (Strace.MissingReason is null)
        {
            string log = local["check.strace"];
            ProcessResult traced = ProcessRunner.Run(
                "strace",
                ["-f", "-qq", "-o", log, "-e", "trace=%file",
                 "dotnet", Path.Combine(AppContext.BaseDirectory, "backing-chain.dll"), "check", "-f", "qcow2", url],
                local.Path);
            Assert.Equal(1, traced.ExitCode);
            string[] touched = File.ReadAllLines(log).Where(line => line.Contains("shadow.raw", StringComparison.Ordinal)).ToArray();
            Assert.True(touched.Length == 0, string.Join('\n', touched));
        }
    }

    [NginxFact]
    public async Task Every_file_a_remote_header_names_is_judged_as_the_untrusted_posture_judges_it()
    {
        // The class, not the one file: the backing file and the external data file, declared and recorded formats.
        using var nginx = new Nginx();
        using var local = new ScratchDirectory();
        QemuImg.Run(local.Path, "create", "-q", "-f", "raw", "secret.raw", "1M");
        string images = nginx.Folder("images");
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", local["secret.raw"], "-F", "raw", "backing.qcow2", "1M");
        QemuImg.Run(images, "create", "-q", "-f", "qcow2", "-o", $"data_file={local["data.raw"]}", "data.qcow2", "1M");
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", nginx.Url("images/backing.qcow2"), "-F", "qcow2", "chained.qcow2", "1M");
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });
        var spy = new SpyFileProvider();
        var policy = new TrustPolicy { Posture = TrustPosture.Host, TrustedUrlPrefixes = [nginx.Url("images/")] };
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = policy, SourceProviders = [spy, ImageSources.Http(client)] });

        foreach ((string name, int layer) in new[] { ("backing.qcow2", 0), ("data.qcow2", 0), ("chained.qcow2", 1) })
        {
            using IImageSource top = await ImageSources.OpenUrlAsync(client, nginx.Url("images/" + name), policy);
            TrustReport report = await resolver.CheckAsync(top, ImageFormat.Qcow2);

            Assert.False(report.IsSafe, name);
            Assert.Equal(TrustReason.ReferenceNotTrusted, report.Reason);
            ReferenceDecision refused = report.Chain.Decisions.Single(d => d.Reference.IsLocalPath);
            Assert.Equal((layer, ReferenceOutcome.Refused, TrustBasis.None), (refused.LayerIndex, refused.Outcome, refused.Basis));
        }

        Assert.Empty(spy.Opened);

        // The same headers on this machine, in the host posture, are the administrator's word (libvirt's rule).
        File.Copy(Path.Combine(images, "backing.qcow2"), local["backing.qcow2"]);
        TrustReport localReport = await new ImageChainResolver(new ImageChainResolverOptions { Policy = policy }).CheckAsync(local["backing.qcow2"], ImageFormat.Qcow2);
        Assert.True(localReport.IsSafe, string.Join('\n', localReport.Findings.Select(f => f.Message)));
    }
}
