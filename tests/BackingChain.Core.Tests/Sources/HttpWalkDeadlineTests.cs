using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Sources;

/// <summary>
/// One deadline bounds a whole walk (<see cref="ImageChainResolverOptions.Timeout"/>, the CLI's <c>--timeout</c>),
/// however many layers answer slowly and however much each stays under the per-request timeout; and no cookie one
/// server sets is sent to another.
/// </summary>
public sealed class HttpWalkDeadlineTests
{
    private static HttpClient NewClient() => new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false }) { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>A resolver that trusts <paramref name="server"/> and reads over <paramref name="client"/>, within <paramref name="timeout"/>.</summary>
    private static ImageChainResolver Resolver(RangeServer server, HttpClient client, TimeSpan timeout) => new(new ImageChainResolverOptions
    {
        Policy = new TrustPolicy { TrustedUrlPrefixes = [server.Url("")] },
        SourceProviders = [ImageSources.Files, ImageSources.Http(client)],
        Timeout = timeout,
    });

    /// <summary>top.qcow2 → mid.qcow2 → base.raw, every backing name a URL on <paramref name="server"/>.</summary>
    private static void ServeChain(RangeServer server, RangeServer? baseServer = null)
    {
        using var dir = new ScratchDirectory();
        RangeServer lower = baseServer ?? server;
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-u", "-f", "qcow2", "-b", lower.Url("base.raw"), "-F", "raw", "mid.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-u", "-f", "qcow2", "-b", server.Url("mid.qcow2"), "-F", "qcow2", "top.qcow2", "1M");
        lower.Add("base.raw", File.ReadAllBytes(dir["base.raw"]));
        server.Add("mid.qcow2", File.ReadAllBytes(dir["mid.qcow2"]));
        server.Add("top.qcow2", File.ReadAllBytes(dir["top.qcow2"]));
    }

    [QemuImgFact]
    public async Task A_walk_of_slow_layers_ends_at_its_deadline_with_a_finding_that_names_it()
    {
        await using var server = new RangeServer();
        ServeChain(server);
        using HttpClient client = NewClient();
        using IImageSource top = await ImageSources.OpenUrlAsync(client, server.Url("top.qcow2"));

        // Each answer waits 1 s, well under the client's 30 s: a walk without a deadline takes 6 s or more (the head
        // and tail of the top, then an open and a head per layer).
        server.Delay = TimeSpan.FromSeconds(1);
        var resolver = Resolver(server, client, TimeSpan.FromSeconds(1.5));
        var clock = Stopwatch.StartNew();
        TrustReport report = await resolver.CheckAsync(top);
        clock.Stop();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"the walk took {clock.Elapsed}");
        Assert.False(report.IsSafe);
        Assert.Equal(ChainEnding.Missing, report.Chain.Ending);
        ChainFinding finding = report.Chain.Findings[^1];
        Assert.Equal(FindingCodes.UnreachableImage, finding.Code);
        Assert.Contains("deadline of 1.5 s", finding.Message, StringComparison.Ordinal);
        Assert.True(report.Chain.Layers.Length < 3);

        // The same walk with the deadline lifted reads all three layers: the deadline was what ended it.
        server.Delay = TimeSpan.FromMilliseconds(100);
        var unbounded = Resolver(server, client, Timeout.InfiniteTimeSpan);
        TrustReport whole = await unbounded.CheckAsync(top);
        Assert.True(whole.IsSafe, string.Join("\n", whole.Findings.Select(f => f.Message)));
        Assert.Equal(3, whole.Chain.Layers.Length);
    }

    [QemuImgFact]
    public async Task A_network_disk_of_a_domain_ends_at_its_deadline_too()
    {
        await using var server = new RangeServer();
        ServeChain(server);
        server.Delay = TimeSpan.FromSeconds(1);
        using HttpClient client = NewClient();
        string document = $"<disk type='network' device='disk'><driver name='qemu' type='qcow2'/><source protocol='http' name='top.qcow2'><host name='127.0.0.1' port='{server.Port}'/></source><target dev='vda' bus='virtio'/></disk>";
        var options = new ImageChainResolverOptions
        {
            Policy = new TrustPolicy { TrustedUrlPrefixes = [server.Url("")] },
            SourceProviders = [ImageSources.Files, ImageSources.Http(client)],
            Timeout = TimeSpan.FromSeconds(1.5),
        };
        var clock = Stopwatch.StartNew();
        using var xml = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(document));
        var disks = await BackingChain.Interop.LibvirtDomainReader.ReadAsync(xml, options);
        clock.Stop();

        // The top's opening counts: one answer of 1 s, then the walk, all within the one deadline.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"the disk took {clock.Elapsed}");
        TrustReport report = Assert.Single(disks).Report;
        Assert.False(report.IsSafe);
        Assert.Contains(report.Chain.Findings, f => f.Code == FindingCodes.UnreachableImage && f.Message.Contains("deadline of 1.5 s", StringComparison.Ordinal));
    }

    [QemuImgFact]
    public async Task The_callers_own_cancellation_still_throws()
    {
        await using var server = new RangeServer();
        ServeChain(server);
        using HttpClient client = NewClient();
        using IImageSource top = await ImageSources.OpenUrlAsync(client, server.Url("top.qcow2"));
        server.Delay = TimeSpan.FromSeconds(1);
        var resolver = Resolver(server, client, TimeSpan.FromSeconds(30));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await resolver.CheckAsync(top, cancellationToken: cancel.Token));
    }

    [Fact]
    public void The_timeout_option_takes_only_positive_or_infinite_spans()
    {
        Assert.Equal(TimeSpan.FromMinutes(2), ImageChainResolverOptions.Default.Timeout);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageChainResolverOptions { Timeout = TimeSpan.Zero });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageChainResolverOptions { Timeout = TimeSpan.FromSeconds(-1) });
        Assert.Equal(Timeout.InfiniteTimeSpan, new ImageChainResolverOptions { Timeout = Timeout.InfiniteTimeSpan }.Timeout);
    }

    [QemuImgFact]
    public async Task The_cli_timeout_bounds_check_info_and_xml_of_a_url()
    {
        await using var server = new RangeServer();
        ServeChain(server);
        server.Delay = TimeSpan.FromSeconds(1.5);
        using var dir = new ScratchDirectory();

        // Unbounded, check alone asks seven times (10.5 s); with --timeout 2.5 the whole command ends well before.
        foreach (string[] command in new[]
        {
            new[] { "check", "--output", "json", "--timeout", "2.5", "--trust-url", server.Url(""), server.Url("top.qcow2") },
            new[] { "info", "--backing-chain", "--timeout", "2.5", server.Url("top.qcow2") },
            new[] { "xml", "--timeout", "2.5", "--trust-url", server.Url(""), server.Url("top.qcow2") },
        })
        {
            var clock = Stopwatch.StartNew();
            (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, command);
            clock.Stop();
            Assert.True(exit == 1, $"{command[0]} exited {exit}: {stderr}");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"{command[0]} took {clock.Elapsed}");
            Assert.Contains("deadline of", stdout + stderr, StringComparison.Ordinal);
            if (command[0] == "check")
            {
                Assert.True(stdout.Length > 0, $"check wrote no report: {stderr}");
                JsonNode json = JsonNode.Parse(stdout)!;
                Assert.Equal("unsafe", (string?)json["verdict"]);
            }
        }

        (int usage, _, string usageError) = CliRunner.Run(dir.Path, "check", "--timeout", "0", server.Url("top.qcow2"));
        Assert.Equal(2, usage);
        Assert.Contains("--timeout needs a number of seconds", usageError, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public async Task A_cookie_one_server_sets_is_never_sent_to_another_or_back()
    {
        // Two servers on one host, told apart only by their ports, which cookies ignore.
        await using var first = new RangeServer();
        await using var second = new RangeServer();
        ServeChain(first, second);
        first.ExtraHeaders.Add("Set-Cookie: session=from-first; Path=/");

        using var dir = new ScratchDirectory();
        (int exit, string stdout, string stderr) = CliRunner.Run(dir.Path, "info", "--backing-chain", "--output", "json", first.Url("top.qcow2"));
        Assert.True(exit == 0, stderr);
        Assert.Equal(3, JsonNode.Parse(stdout)!.AsArray().Count);
        Assert.NotEmpty(second.Requests);
        Assert.True(first.Requests.Count > 2);
        Assert.All(first.Requests.Concat(second.Requests), request => Assert.DoesNotContain("\r\ncookie:", request, StringComparison.OrdinalIgnoreCase));
    }
}
