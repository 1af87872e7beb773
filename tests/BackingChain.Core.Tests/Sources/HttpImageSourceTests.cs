using System;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Sources;

/// <summary>Images read over http from a real nginx on 127.0.0.1, and from tiny servers that misbehave on purpose.</summary>
public sealed class HttpImageSourceTests
{
    private static HttpClient NewClient(TimeSpan? timeout = null) =>
        new(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = timeout ?? TimeSpan.FromSeconds(30) };

    private static void MakeChain(string folder)
    {
        QemuImg.Run(folder, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(folder, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "mid.qcow2");
        QemuImg.Run(folder, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");
    }

    private static ImageChainResolver Resolver(HttpClient client, TrustPolicy policy) => new(new ImageChainResolverOptions
    {
        Policy = policy,
        SourceProviders = [FileImageSourceProvider.Instance, new HttpImageSourceProvider(client)],
    });

    [NginxQemuFact]
    public void Info_of_a_three_layer_chain_over_http_equals_qemu_img()
    {
        using var nginx = new Nginx();
        MakeChain(nginx.Folder("images"));
        string url = nginx.Url("images/top.qcow2");

        JsonNode expected = QemuImg.Info(nginx.Root, url, backingChain: true);
        (int exit, string stdout, string stderr) = CliRunner.Run(nginx.Root, "info", "--output", "json", "--backing-chain", url);
        Assert.True(exit == 0, $"backing-chain failed ({exit}): {stderr}");
        JsonNode actual = JsonNode.Parse(stdout)!;
        var differences = JsonComparison.Differences(expected, actual);
        Assert.True(differences.Count == 0, string.Join("\n", differences));

        // What makes this an http chain and not three local files, checked on qemu-img's side too.
        Assert.Equal(3, actual.AsArray().Count);
        Assert.Equal(nginx.Url("images/base.raw"), (string?)actual[2]!["filename"]);
        Assert.All(actual.AsArray(), layer => Assert.False(layer!.AsObject().ContainsKey("actual-size")));
    }

    [NginxQemuFact]
    public async Task A_chain_is_followed_over_http_only_under_a_trusted_prefix()
    {
        using var nginx = new Nginx();
        MakeChain(nginx.Folder("images"));
        using HttpClient client = NewClient();
        using HttpImageSource top = await HttpImageSource.OpenAsync(client, nginx.Url("images/top.qcow2"));

        TrustReport trusted = await Resolver(client, new TrustPolicy { TrustedUrlPrefixes = [nginx.Url("images")] }).CheckAsync(top);
        Assert.True(trusted.IsSafe, string.Join("\n", trusted.Findings.Select(f => f.Message)));
        Assert.Equal(3, trusted.Chain.Layers.Length);
        Assert.All(trusted.Chain.Decisions, d => Assert.Equal(TrustBasis.Location, d.Basis));
        Assert.Null(trusted.Chain.Layers[2].ActualSize);

        // The same chain with no URL trusted: the host posture's word on a recorded format does not reach servers.
        string before = nginx.AccessLog();
        TrustReport untrusted = await Resolver(client, TrustPolicy.Default).CheckAsync(top, ImageFormat.Qcow2);
        Assert.False(untrusted.IsSafe);
        Assert.Equal(ReferenceOutcome.Refused, Assert.Single(untrusted.Chain.Decisions).Outcome);
        Assert.DoesNotContain("mid.qcow2", nginx.AccessLog()[before.Length..], StringComparison.Ordinal);

        // No source for http at all: not followed, and said so.
        TrustReport noSource = await new ImageChainResolver(new ImageChainResolverOptions { Policy = new TrustPolicy { TrustedUrlPrefixes = [nginx.Url("images")] } }).CheckAsync(top);
        Assert.Equal(ReferenceOutcome.NotFollowed, Assert.Single(noSource.Chain.Decisions).Outcome);
    }

    [NginxQemuFact]
    public async Task A_dot_dot_name_does_not_escape_the_trusted_prefix_and_the_server_is_never_asked()
    {
        using var nginx = new Nginx();
        string images = nginx.Folder("images");
        QemuImg.Run(nginx.Folder("secret"), "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", "../secret/base.raw", "-F", "raw", "top.qcow2", "1M");
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", "json:{\"file.driver\":\"http\",\"file.url\":\"" + nginx.Url("images/../secret/base.raw") + "\"}", "-F", "raw", "json.qcow2", "1M");
        using HttpClient client = NewClient();
        var policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedUrlPrefixes = [nginx.Url("images/")] };

        foreach (string name in new[] { "top.qcow2", "json.qcow2" })
        {
            using HttpImageSource top = await HttpImageSource.OpenAsync(client, nginx.Url("images/" + name));
            TrustReport report = await Resolver(client, policy).CheckAsync(top, ImageFormat.Qcow2);
            ReferenceDecision decision = Assert.Single(report.Chain.Decisions);
            Assert.Equal(ReferenceOutcome.Refused, decision.Outcome);
            Assert.Equal(nginx.Url("secret/base.raw"), decision.CanonicalPath);
            Assert.False(report.IsSafe);
        }

        Assert.DoesNotContain("/secret/", nginx.AccessLog(), StringComparison.Ordinal);

        // Trusting the folder it really names lets the same reference through, so the refusal was the prefix's doing.
        var wider = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedUrlPrefixes = [nginx.Url("images/"), nginx.Url("secret/")] };
        using HttpImageSource again = await HttpImageSource.OpenAsync(client, nginx.Url("images/json.qcow2"));
        TrustReport accepted = await Resolver(client, wider).CheckAsync(again, ImageFormat.Qcow2);
        Assert.True(accepted.IsSafe, string.Join("\n", accepted.Findings.Select(f => f.Message)));
    }

    [NginxFact]
    public async Task A_server_ignoring_ranges_is_refused_without_downloading_the_image()
    {
        using var nginx = new Nginx();
        string big = Path.Combine(nginx.Folder("norange"), "big.raw");
        using (FileStream file = File.Create(big))
        {
            file.SetLength(1L << 30);
        }

        using HttpClient client = NewClient();
        IOException ex = await Assert.ThrowsAnyAsync<IOException>(() => HttpImageSource.OpenAsync(client, nginx.Url("norange/big.raw")));
        Assert.Contains("does not honour byte ranges", ex.Message, StringComparison.Ordinal);

        // nginx logs what it got into the socket before the client hung up: far less than the 1 GiB image.
        (long bytesSent, int status) = LastRequest(nginx, "/norange/big.raw");
        Assert.Equal(200, status);
        Assert.True(bytesSent < 64L << 20, $"{bytesSent} bytes were sent");
    }

    [NginxFact]
    public async Task A_file_changed_between_reads_is_an_error_not_a_mixed_header()
    {
        using var nginx = new Nginx();
        string path = Path.Combine(nginx.Folder("images"), "changing.raw");
        File.WriteAllBytes(path, Enumerable.Repeat((byte)'A', 8192).ToArray());
        using HttpClient client = NewClient();
        using HttpImageSource source = await HttpImageSource.OpenAsync(client, nginx.Url("images/changing.raw"));

        byte[] buffer = new byte[512];
        Assert.Equal(512, await source.ReadAtAsync(0, buffer));
        Assert.All(buffer, b => Assert.Equal((byte)'A', b));

        // Same length, other bytes, another time stamp: nginx's ETag (mtime-length) changes.
        File.WriteAllBytes(path, Enumerable.Repeat((byte)'B', 8192).ToArray());
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(5));
        await Assert.ThrowsAsync<ImageSourceChangedException>(async () => await source.ReadAtAsync(512, buffer));

        // Through the resolver: a finding, not an exception.
        ImageChain chain = await Resolver(client, TrustPolicy.Default).ResolveAsync(source);
        Assert.Empty(chain.Layers);
        ChainFinding finding = Assert.Single(chain.Findings);
        Assert.Equal(FindingCodes.UnreachableImage, finding.Code);
        Assert.True(finding.Message.Contains("changed on the server", StringComparison.Ordinal), finding.Message);
    }

    [NginxQemuFact]
    public async Task A_redirect_is_followed_only_to_a_target_the_policy_trusts_and_a_refusal_names_the_target()
    {
        using var nginx = new Nginx();
        string images = nginx.Folder("images");
        QemuImg.Run(images, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", nginx.Url("moved/base.raw"), "-F", "raw", "moved.qcow2", "1M");
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", nginx.Url("hop2/base.raw"), "-F", "raw", "hop2.qcow2", "1M");
        using HttpClient client = NewClient();
        string target = nginx.OtherHostUrl("images/base.raw");

        // To another host the policy does not trust: refused, the finding names where the server pointed, and that
        // host is never asked.
        using HttpImageSource top = await HttpImageSource.OpenAsync(client, nginx.Url("images/moved.qcow2"));
        var oneHost = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedUrlPrefixes = [nginx.Url("")] };
        TrustReport refused = await Resolver(client, oneHost).CheckAsync(top, ImageFormat.Qcow2);
        Assert.False(refused.IsSafe);
        ReferenceDecision decision = Assert.Single(refused.Chain.Decisions);
        Assert.Equal(ReferenceOutcome.Refused, decision.Outcome);
        Assert.Equal(target, decision.CanonicalPath);
        ChainFinding finding = Assert.Single(refused.Findings, f => f.Code == FindingCodes.UnreachableImage);
        Assert.Contains($"redirects to '{target}'", finding.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("GET /images/base.raw ", nginx.AccessLog(), StringComparison.Ordinal);

        // Trusting that host too lets the same redirect through: the URL read is the target, trusted by location.
        var bothHosts = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedUrlPrefixes = [nginx.Url(""), nginx.OtherHostUrl("images/")] };
        TrustReport followed = await Resolver(client, bothHosts).CheckAsync(top, ImageFormat.Qcow2);
        Assert.True(followed.IsSafe, string.Join("\n", followed.Findings.Select(f => f.Message)));
        decision = Assert.Single(followed.Chain.Decisions);
        Assert.Equal((ReferenceOutcome.Opened, TrustBasis.Location, target), (decision.Outcome, decision.Basis, decision.CanonicalPath));
        Assert.Equal(ImageSourceIdentity.ForKey("http", target), followed.Chain.Layers[1].Identity);

        // Two redirects on one host, the second target outside the only trusted prefix (/hop2/ -> /hop/ -> /images/).
        using HttpImageSource viaHops = await HttpImageSource.OpenAsync(client, nginx.Url("images/hop2.qcow2"));
        var hopsOnly = new TrustPolicy { TrustedUrlPrefixes = [nginx.Url("images/hop2.qcow2"), nginx.Url("hop2/"), nginx.Url("hop/")] };
        TrustReport hopRefused = await Resolver(client, hopsOnly).CheckAsync(viaHops);
        Assert.Contains($"redirects to '{nginx.Url("images/base.raw")}'", Assert.Single(hopRefused.Findings, f => f.Code == FindingCodes.UnreachableImage).Message, StringComparison.Ordinal);
        var hopsAndImages = new TrustPolicy { TrustedUrlPrefixes = [nginx.Url("images/"), nginx.Url("hop2/"), nginx.Url("hop/")] };
        TrustReport hopFollowed = await Resolver(client, hopsAndImages).CheckAsync(viaHops);
        Assert.True(hopFollowed.IsSafe, string.Join("\n", hopFollowed.Findings.Select(f => f.Message)));

        // Followed untrusted, as qemu-img follows it, the layer is described but never accepted.
        TrustReport qemuLike = await Resolver(client, new TrustPolicy { FollowUntrustedReferences = true }).CheckAsync(top, ImageFormat.Qcow2);
        Assert.Equal(2, qemuLike.Chain.Layers.Length);
        Assert.Equal(TrustBasis.FollowedUntrusted, Assert.Single(qemuLike.Chain.Decisions).Basis);
        Assert.False(qemuLike.IsSafe);
    }

    [NginxFact]
    public async Task The_url_a_redirect_leads_to_is_the_one_read_and_pinned()
    {
        using var nginx = new Nginx();
        string path = Path.Combine(nginx.Folder("images"), "data.raw");
        File.WriteAllBytes(path, Enumerable.Repeat((byte)'A', 8192).ToArray());
        using HttpClient client = NewClient();
        var policy = new TrustPolicy { TrustedUrlPrefixes = [nginx.Url("")] };

        using HttpImageSource source = await HttpImageSource.OpenAsync(client, nginx.Url("hop2/data.raw"), policy);
        Assert.Equal(nginx.Url("hop2/data.raw"), source.Name);
        Assert.Equal(nginx.Url("images/data.raw"), source.Url);
        Assert.Equal(8192, source.Length);
        Assert.Equal(512, await source.ReadAtAsync(1024, new byte[512]));

        // Each redirect was asked once, while opening; the range read went straight to the target. nginx logs a
        // request when it has finished it, which can be after the client has its bytes: wait for the second line.
        string[] requests = [];
        for (int attempt = 0; attempt < 200; attempt++)
        {
            requests = nginx.AccessLog().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (requests.Count(l => l.Contains("GET /images/data.raw ", StringComparison.Ordinal)) >= 2)
            {
                break;
            }

            await Task.Delay(10);
        }

        Assert.Single(requests, l => l.Contains("GET /hop2/data.raw ", StringComparison.Ordinal));
        Assert.Single(requests, l => l.Contains("GET /hop/data.raw ", StringComparison.Ordinal));
        Assert.Equal(2, requests.Count(l => l.Contains("GET /images/data.raw ", StringComparison.Ordinal)));

        // The validator pinned is the target's: replacing the target is seen, though the redirect is not asked again.
        File.WriteAllBytes(path, Enumerable.Repeat((byte)'B', 8192).ToArray());
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(5));
        await Assert.ThrowsAsync<ImageSourceChangedException>(async () => await source.ReadAtAsync(0, new byte[512]));
    }

    [NginxQemuFact]
    public async Task Redirects_are_bounded_and_not_followed_without_a_policy()
    {
        using var nginx = new Nginx();
        MakeChain(nginx.Folder("images"));
        using HttpClient client = NewClient();

        IOException loop = await Assert.ThrowsAnyAsync<IOException>(() => HttpImageSource.OpenAsync(client, nginx.Url("loop/top.qcow2"), TrustPolicy.QemuCompatible));
        Assert.Contains("redirected more than 5 times", loop.Message, StringComparison.Ordinal);
        Assert.Equal(6, nginx.AccessLog().Split('\n').Count(l => l.Contains("GET /loop/top.qcow2 ", StringComparison.Ordinal)));

        IOException noPolicy = await Assert.ThrowsAnyAsync<IOException>(() => HttpImageSource.OpenAsync(client, nginx.Url("moved/top.qcow2")));
        Assert.Contains($"redirected to '{nginx.OtherHostUrl("images/top.qcow2")}'; redirects are not followed", noPolicy.Message, StringComparison.Ordinal);

        // The CLI's check judges a redirect of the top image by the prefixes it is given.
        (int exit, _, string stderr) = CliRunner.Run(nginx.Root, "check", "--trust-url", nginx.Url(""), nginx.Url("moved/top.qcow2"));
        Assert.Equal(1, exit);
        Assert.Contains($"redirected to '{nginx.OtherHostUrl("images/top.qcow2")}', which the trust policy does not allow", stderr, StringComparison.Ordinal);
        (int trusted, string trustedOut, string trustedErr) = CliRunner.Run(nginx.Root, "check", "--trust-url", nginx.Url(""), "--trust-url", nginx.OtherHostUrl(""), nginx.Url("moved/top.qcow2"));
        Assert.True(trusted == 0, trustedOut + trustedErr);
    }

    [NginxQemuFact]
    public void Info_through_redirects_equals_qemu_img()
    {
        using var nginx = new Nginx();
        string images = nginx.Folder("images");
        QemuImg.Run(images, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", nginx.Url("hop2/base.raw"), "-F", "raw", "top.qcow2", "1M");

        // qemu's curl driver follows redirects and keeps naming the image by the URL it was given; so does info.
        foreach (string url in new[] { nginx.Url("images/top.qcow2"), nginx.Url("moved/top.qcow2") })
        {
            JsonNode expected = QemuImg.Info(nginx.Root, url, backingChain: true);
            (int exit, string stdout, string stderr) = CliRunner.Run(nginx.Root, "info", "--output", "json", "--backing-chain", url);
            Assert.True(exit == 0, $"backing-chain failed ({exit}): {stderr}");
            var differences = JsonComparison.Differences(expected, JsonNode.Parse(stdout)!);
            Assert.True(differences.Count == 0, string.Join("\n", differences));
            Assert.Equal(2, JsonNode.Parse(stdout)!.AsArray().Count);
        }
    }

    [Fact]
    public async Task A_redirect_from_https_to_http_is_refused()
    {
        using var client = new HttpClient(new RedirectingHandler("https://images.test/a.raw", "http://images.test/a.raw"));
        IOException ex = await Assert.ThrowsAnyAsync<IOException>(() => HttpImageSource.OpenAsync(client, "https://images.test/a.raw", TrustPolicy.QemuCompatible));
        Assert.Contains("from https to plain http ('http://images.test/a.raw')", ex.Message, StringComparison.Ordinal);

        // The same redirect between two https URLs is followed (and then fails only for want of an image).
        using var secure = new HttpClient(new RedirectingHandler("https://images.test/a.raw", "https://images.test/b.raw"));
        FileNotFoundException missing = await Assert.ThrowsAsync<FileNotFoundException>(() => HttpImageSource.OpenAsync(secure, "https://images.test/a.raw", TrustPolicy.QemuCompatible));
        Assert.Contains("404", missing.Message, StringComparison.Ordinal);
    }

    [NginxQemuFact]
    public void The_cli_checks_a_url_and_trusts_only_the_prefixes_it_is_given()
    {
        using var nginx = new Nginx();
        MakeChain(nginx.Folder("images"));
        string url = nginx.Url("images/top.qcow2");

        (int trusted, string trustedOut, string trustedErr) = CliRunner.Run(nginx.Root, "check", "--untrusted", "--trust-url", nginx.Url("images/"), "--output", "json", url);
        Assert.True(trusted == 0, trustedOut + trustedErr);
        Assert.Equal("safe", (string?)JsonNode.Parse(trustedOut)!["verdict"]);

        (int untrusted, string untrustedOut, _) = CliRunner.Run(nginx.Root, "check", "--untrusted", "--trust-url", nginx.Url("other/"), "--output", "json", url);
        Assert.Equal(1, untrusted);
        Assert.Equal("unsafe", (string?)JsonNode.Parse(untrustedOut)!["verdict"]);

        (int usage, _, string usageErr) = CliRunner.Run(nginx.Root, "check", "--trust-url", "ftp://h/", url);
        Assert.Equal(2, usage);
        Assert.Contains("trusted URL prefix", usageErr, StringComparison.Ordinal);

        // xml reads the URL and writes it as network storage (LibvirtNetworkXmlTests checks the element); without the prefix it refuses.
        (int xml, string xmlOut, string xmlErr) = CliRunner.Run(nginx.Root, "xml", "--trust-url", nginx.Url("images/"), url);
        Assert.True(xml == 0, xmlErr);
        Assert.StartsWith("<disk type=\"network\"", xmlOut, StringComparison.Ordinal);
        (int refused, _, _) = CliRunner.Run(nginx.Root, "xml", url);
        Assert.Equal(1, refused);
    }

    [NginxQemuFact]
    public async Task A_loop_spelled_two_ways_is_one_url()
    {
        using var nginx = new Nginx();
        string images = nginx.Folder("images");

        // a.qcow2 -> ./b.qcow2 -> ../images/a.qcow2: qemu compares strings and would not see the loop this soon.
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", "./b.qcow2", "-F", "qcow2", "a.qcow2", "1M");
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", "../images/a.qcow2", "-F", "qcow2", "b.qcow2", "1M");
        using HttpClient client = NewClient();
        using HttpImageSource top = await HttpImageSource.OpenAsync(client, nginx.Url("images/a.qcow2"));

        ImageChain chain = await Resolver(client, new TrustPolicy { TrustedUrlPrefixes = [nginx.Url("images/")] }).ResolveAsync(top);
        Assert.Equal(ChainEnding.Loop, chain.Ending);
        Assert.Equal(2, chain.Layers.Length);
        Assert.Equal(ImageSourceIdentity.ForKey("http", nginx.Url("images/a.qcow2")), chain.Layers[0].Identity);
    }

    [NginxFact]
    public async Task A_missing_url_is_a_missing_image()
    {
        using var nginx = new Nginx();
        using HttpClient client = NewClient();
        await Assert.ThrowsAsync<FileNotFoundException>(() => HttpImageSource.OpenAsync(client, nginx.Url("images/none.qcow2")));
    }

    [Fact]
    public async Task A_server_failing_mid_read_gives_a_clear_error()
    {
        const int Length = 4096;
        await using var server = new ScriptedServer((range, stream) =>
        {
            // Announces the whole range, sends half of it, hangs up.
            (long from, long to) = range;
            long count = to - from + 1;
            string headers = $"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{to}/{Length}\r\nContent-Length: {count}\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n";
            stream.Write(Encoding.ASCII.GetBytes(headers));
            stream.Write(new byte[from == 0 && to == 0 ? 1 : count / 2]);
        });
        using HttpClient client = NewClient();
        using HttpImageSource source = await HttpImageSource.OpenAsync(client, server.Url);
        Assert.Equal(Length, source.Length);

        IOException ex = await Assert.ThrowsAnyAsync<IOException>(async () => await source.ReadAtAsync(0, new byte[1024]));
        Assert.Contains("of 1024 bytes", ex.Message, StringComparison.Ordinal);

        ImageChain chain = await new ImageChainResolver().ResolveAsync(source);
        Assert.Equal(FindingCodes.UnreachableImage, Assert.Single(chain.Findings).Code);
    }

    [Fact]
    public async Task A_server_that_does_not_answer_times_out_with_a_clear_error()
    {
        await using var server = new ScriptedServer((_, stream) => Thread.Sleep(Timeout.Infinite), hangUntilDisposed: true);
        using HttpClient client = NewClient(TimeSpan.FromMilliseconds(300));
        IOException ex = await Assert.ThrowsAnyAsync<IOException>(() => HttpImageSource.OpenAsync(client, server.Url));
        Assert.Contains("did not answer within", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_without_a_validator_is_refused()
    {
        await using var server = new ScriptedServer((range, stream) =>
        {
            string headers = $"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-0/4096\r\nContent-Length: 1\r\nConnection: close\r\n\r\n";
            stream.Write(Encoding.ASCII.GetBytes(headers));
            stream.Write(new byte[1]);
        });
        using HttpClient client = NewClient();
        IOException ex = await Assert.ThrowsAnyAsync<IOException>(() => HttpImageSource.OpenAsync(client, server.Url));
        Assert.Contains("neither a strong ETag nor Last-Modified", ex.Message, StringComparison.Ordinal);
    }

    private static (long BytesSent, int Status) LastRequest(Nginx nginx, string path)
    {
        // The combined format: ... "GET /path HTTP/1.1" STATUS BYTES ...; the log line appears when nginx finishes the request.
        for (int attempt = 0; attempt < 200; attempt++)
        {
            string? line = nginx.AccessLog().Split('\n').LastOrDefault(l => l.Contains($"GET {path} ", StringComparison.Ordinal));
            if (line is not null)
            {
                string[] after = line[(line.IndexOf("\" ", StringComparison.Ordinal) + 2)..].Split(' ');
                return (long.Parse(after[1], System.Globalization.CultureInfo.InvariantCulture), int.Parse(after[0], System.Globalization.CultureInfo.InvariantCulture));
            }

            Thread.Sleep(50);
        }

        throw new InvalidOperationException($"nginx logged no request for {path}");
    }

    /// <summary>A handler that redirects one URL to another and answers 404 for everything else; no socket involved.</summary>
    private sealed class RedirectingHandler(string from, string to) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = new HttpResponseMessage(request.RequestUri!.AbsoluteUri == from ? HttpStatusCode.Found : HttpStatusCode.NotFound) { RequestMessage = request };
            if (response.StatusCode == HttpStatusCode.Found)
            {
                response.Headers.Location = new Uri(to);
            }

            return Task.FromResult(response);
        }
    }

    /// <summary>A one-connection-at-a-time HTTP server on 127.0.0.1 whose answer to each range request is scripted.</summary>
    private sealed class ScriptedServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public ScriptedServer(Action<(long From, long To), NetworkStream> answer, bool hangUntilDisposed = false)
        {
            _listener.Start();
            Url = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/image.raw";
            _loop = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    TcpClient client;
                    try
                    {
                        client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    using (client)
                    {
                        NetworkStream stream = client.GetStream();
                        string request = ReadHeaders(stream);
                        if (hangUntilDisposed)
                        {
                            _stop.Token.WaitHandle.WaitOne();
                            return;
                        }

                        answer(ParseRange(request), stream);
                    }
                }
            });
        }

        public string Url { get; }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _loop;
            }
            catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException)
            {
            }

            _stop.Dispose();
        }

        private static string ReadHeaders(NetworkStream stream)
        {
            var text = new StringBuilder();
            int b;
            while ((b = stream.ReadByte()) >= 0)
            {
                text.Append((char)b);
                if (text.Length >= 4 && text.ToString(text.Length - 4, 4) == "\r\n\r\n")
                {
                    break;
                }
            }

            return text.ToString();
        }

        private static (long, long) ParseRange(string request)
        {
            string line = request.Split("\r\n").First(l => l.StartsWith("Range: bytes=", StringComparison.OrdinalIgnoreCase));
            string[] parts = line["Range: bytes=".Length..].Split('-');
            return (long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
