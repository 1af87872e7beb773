using System;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Sources;

/// <summary>
/// A URL whose path one server reads as another path is trusted by no prefix: a <c>;</c> (path parameters, which
/// Tomcat-style servers strip, so <c>..;/</c> climbs), its escape <c>%3B</c>, and an escaped <c>%</c>
/// (<c>%25</c>, which a server that decodes twice turns into a dot-segment) — in a backing name, in a <c>json:</c>
/// name and in a redirect target. The plain spellings beside them stay trusted, so the refusal is the rule's doing.
/// </summary>
public sealed class HttpPrefixAmbiguityTests
{
    // Relative backing names of an image under /images/; each, read by some server, reaches /secret/s.raw.
    private static readonly string[] Names =
    [
        "..;/..;/secret/s.raw",
        "..;/secret/s.raw",
        "..%3b/secret/s.raw",
        "..%3B/..%3B/secret/s.raw",
        "%252e%252e/%252e%252e/secret/s.raw",
        "%252E%252E/secret/s.raw",
        ".%252e/secret/s.raw",
        "%2e%2e;/secret/s.raw",
        "s.raw;jsessionid=1",
        "%25/s.raw",
    ];

    public static readonly TheoryData<string> AmbiguousNames = new(Names);

    private static HttpClient NewClient() => new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false }) { Timeout = TimeSpan.FromSeconds(30) };

    private static ImageChainResolver Resolver(HttpClient client, TrustPolicy policy) => new(new ImageChainResolverOptions
    {
        Policy = policy,
        SourceProviders = [FileImageSourceProvider.Instance, new HttpImageSourceProvider(client)],
    });

    [Theory]
    [MemberData(nameof(AmbiguousNames))]
    public void An_ambiguous_path_lies_under_no_prefix(string name)
    {
        var policy = new TrustPolicy { TrustedUrlPrefixes = ["http://h/images/", "http://h/"] };
        Assert.True(HttpUrl.TryNormalize("http://h/images/" + name, out string normal, out _));
        Assert.False(policy.IsUrlTrusted(normal), normal);

        // Plain names under the same prefix are trusted, dot-segments that stay inside too.
        Assert.True(policy.IsUrlTrusted("http://h/images/s.raw"));
        Assert.True(HttpUrl.TryNormalize("http://h/images/a/%2e%2e/s.raw?x=%25;", out string plain, out _));
        Assert.True(policy.IsUrlTrusted(plain));
    }

    [NginxQemuFact]
    public async Task Ambiguous_backing_names_and_json_names_are_refused_and_never_asked_for()
    {
        using var nginx = new Nginx();
        string images = nginx.Folder("images");
        QemuImg.Run(nginx.Folder("secret"), "create", "-q", "-f", "raw", "s.raw", "1M");
        QemuImg.Run(images, "create", "-q", "-f", "raw", "s.raw", "1M");
        using HttpClient client = NewClient();
        foreach (TrustPosture posture in new[] { TrustPosture.Host, TrustPosture.UntrustedImage })
        {
            var policy = new TrustPolicy { Posture = posture, TrustedUrlPrefixes = [nginx.Url("images/")] };
            foreach (string name in Names)
            {
                string json = "json:{\"file.driver\":\"http\",\"file.url\":\"" + nginx.Url("images/" + name) + "\"}";
                foreach ((string file, string backing) in new[] { ("rel.qcow2", name), ("abs.qcow2", nginx.Url("images/" + name)), ("json.qcow2", json) })
                {
                    File.Delete(Path.Combine(images, file));
                    QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", backing, "-F", "raw", file, "1M");
                    using IImageSource top = await ImageSources.OpenUrlAsync(client, nginx.Url("images/" + file));
                    TrustReport report = await Resolver(client, policy).CheckAsync(top, ImageFormat.Qcow2);
                    ReferenceDecision decision = Assert.Single(report.Chain.Decisions);
                    Assert.True(decision.Outcome == ReferenceOutcome.Refused, $"{posture} {file} -> {backing}: {decision.Outcome}");
                    Assert.False(report.IsSafe);
                }
            }

            // The plain name beside them is followed: the prefix itself works.
            File.Delete(Path.Combine(images, "plain.qcow2"));
            QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", "s.raw", "-F", "raw", "plain.qcow2", "1M");
            using IImageSource plain = await ImageSources.OpenUrlAsync(client, nginx.Url("images/plain.qcow2"));
            TrustReport accepted = await Resolver(client, policy).CheckAsync(plain, ImageFormat.Qcow2);
            Assert.True(accepted.IsSafe, string.Join("\n", accepted.Findings.Select(f => f.Message)));
        }

        string log = nginx.AccessLog();
        Assert.DoesNotContain(";", log, StringComparison.Ordinal);
        Assert.DoesNotContain("%25", log, StringComparison.Ordinal);
        Assert.DoesNotContain("%3B", log, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("/secret/", log, StringComparison.Ordinal);

        // The CLI, in both postures, says the same.
        File.Delete(Path.Combine(images, "rel.qcow2"));
        QemuImg.Run(images, "create", "-q", "-u", "-f", "qcow2", "-b", "..;/..;/secret/s.raw", "-F", "raw", "rel.qcow2", "1M");
        foreach (string[] posture in new[] { Array.Empty<string>(), ["--untrusted"] })
        {
            (int exit, _, _) = CliRunner.Run(nginx.Root, ["check", .. posture, "--trust-url", nginx.Url("images/"), nginx.Url("images/rel.qcow2")]);
            Assert.Equal(1, exit);
        }
    }

    [Theory]
    [MemberData(nameof(AmbiguousNames))]
    public async Task A_redirect_to_an_ambiguous_path_is_refused(string name)
    {
        string target = "http://images.test/images/" + name;
        using var client = new HttpClient(new RedirectingHandler("http://images.test/images/a.raw", target));
        var policy = new TrustPolicy { TrustedUrlPrefixes = ["http://images.test/images/"] };
        await Assert.ThrowsAsync<HttpRedirectRefusedException>(() => HttpImageSource.OpenAsync(client, "http://images.test/images/a.raw", policy));

        // A plain target under the same prefix is followed (and then fails only for want of an image).
        using var plain = new HttpClient(new RedirectingHandler("http://images.test/images/a.raw", "http://images.test/images/b.raw"));
        await Assert.ThrowsAsync<FileNotFoundException>(() => HttpImageSource.OpenAsync(plain, "http://images.test/images/a.raw", policy));
    }

    /// <summary>A handler that redirects one URL to another (as written) and answers 404 for everything else.</summary>
    private sealed class RedirectingHandler(string from, string to) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = new HttpResponseMessage(request.RequestUri!.AbsoluteUri == from ? HttpStatusCode.Found : HttpStatusCode.NotFound) { RequestMessage = request };
            if (response.StatusCode == HttpStatusCode.Found)
            {
                response.Headers.TryAddWithoutValidation("Location", to);
            }

            return Task.FromResult(response);
        }
    }
}
