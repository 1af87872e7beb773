using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Threading.Tasks;
using BackingChain.Hosting;
using BackingChain.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace ProvisioningGate.Tests;

/// <summary>
/// The sample configured the usual way — appsettings.json, any configuration source, <c>Configure&lt;BackingChainOptions&gt;</c> —
/// as a service's author would: a bad setting stops the host at start naming it, and every good one reaches the gate.
/// </summary>
public sealed class SampleConfigurationTests : IDisposable
{
    private readonly ScratchDirectory _dir = new();

    public SampleConfigurationTests()
    {
        Directory.CreateDirectory(_dir["work"]);
    }

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("BackingChain:TrustedRoots:0", "/backing-chain-no-such-directory")]
    [InlineData("BackingChain:TrustedRoots:0", "relative/root")]
    [InlineData("BackingChain:PinnedImages:0", "not-a-pin")]
    [InlineData("BackingChain:TrustedUrlPrefixes:0", "ftp://images.example/")]
    [InlineData("BackingChain:Posture", "tenant")]
    [InlineData("BackingChain:MaxDepth", "0")]
    [InlineData("BackingChain:HeadWindowLength", "12")]
    public void A_bad_setting_stops_the_host_at_start_naming_the_setting(string key, string value)
    {
        // The sample run as its README runs it, the bad setting on its command line (any configuration source would do).
        string sample = Path.Combine(AppContext.BaseDirectory, "ProvisioningGate.dll");
        ProcessResult run = ProcessRunner.Run(
            "dotnet",
            [sample, "--urls", "http://127.0.0.1:0", "--ImageRoot", _dir["images"], $"--{key}={value}"],
            _dir.Path,
            environment: new Dictionary<string, string> { ["DOTNET_ENVIRONMENT"] = "Production" },
            timeout: TimeSpan.FromMinutes(2));

        // It stopped before listening, and its output says which setting to fix.
        Assert.NotEqual(0, run.ExitCode);
        Assert.DoesNotContain("Now listening on", run.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(key + ": ", run.StandardOutput + run.StandardError, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public async Task MaxDepth_from_the_configuration_reaches_the_gate()
    {
        using WebApplicationFactory<Program> capped = Factory(b => b.UseSetting("BackingChain:MaxDepth", "2"));
        using WebApplicationFactory<Program> uncapped = Factory(_ => { }, "images-uncapped");

        Assert.Equal([HttpStatusCode.Created, HttpStatusCode.Created, (HttpStatusCode)422], await UploadChainAsync(capped.CreateClient()));
        Assert.Equal([HttpStatusCode.Created, HttpStatusCode.Created, HttpStatusCode.Created], await UploadChainAsync(uncapped.CreateClient()));
    }

    [QemuImgFact]
    public async Task Configure_of_BackingChainOptions_is_honoured()
    {
        // Seen by a user before: services.Configure<BackingChainOptions>(…) was silently ignored.
        using WebApplicationFactory<Program> factory = Factory(b => b.ConfigureServices(s => s.Configure<BackingChainOptions>(o => o.MaxDepth = 2)));

        Assert.Equal([HttpStatusCode.Created, HttpStatusCode.Created, (HttpStatusCode)422], await UploadChainAsync(factory.CreateClient()));
    }

    [QemuImgFact]
    public async Task Images_over_http_are_read_with_only_a_trusted_prefix_configured()
    {
        await using var server = new RangeServer();
        QemuImg.Run(_dir["work"], "create", "-q", "-f", "raw", "remote.raw", "1M");
        server.Add("base/remote.raw", File.ReadAllBytes(_dir["work/remote.raw"]));
        QemuImg.Run(_dir["work"], "create", "-q", "-f", "qcow2", "-u", "-b", server.Url("base/remote.raw"), "-F", "raw", "web.qcow2", "1M");
        byte[] overlay = File.ReadAllBytes(_dir["work/web.qcow2"]);

        using WebApplicationFactory<Program> trusting = Factory(b => b.UseSetting("BackingChain:TrustedUrlPrefixes:0", server.Url("base/")));
        using WebApplicationFactory<Program> plain = Factory(_ => { }, "images-plain");
        HttpClient client = trusting.CreateClient();

        using HttpResponseMessage accepted = await client.SendAsync(GateScenarios.Put("web.qcow2", overlay, "qcow2", chunked: false));
        using HttpResponseMessage refused = await plain.CreateClient().SendAsync(GateScenarios.Put("web.qcow2", overlay, "qcow2", chunked: false));
        string chain = await client.GetStringAsync("/images/web.qcow2/chain");

        Assert.True(accepted.StatusCode == HttpStatusCode.Created, await accepted.Content.ReadAsStringAsync());
        Assert.Equal(422, (int)refused.StatusCode);

        // The stored overlay's chain is walked over HTTP too: two layers, the second the server's.
        Assert.Contains(server.Url("base/remote.raw"), chain, StringComparison.Ordinal);
        Assert.Contains("\"verdict\": \"safe\"", chain, StringComparison.Ordinal);
        Assert.Contains(server.Requests, r => r.Contains("GET /base/remote.raw", StringComparison.Ordinal));
    }

    private WebApplicationFactory<Program> Factory(Action<IWebHostBuilder> configure, string root = "images") =>
        new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            builder.UseSetting("ImageRoot", _dir[root]);
            configure(builder);
        });

    /// <summary>Uploads base.raw, mid.qcow2 over it, top.qcow2 over mid: chains of one, two and three layers.</summary>
    private async Task<HttpStatusCode[]> UploadChainAsync(HttpClient client)
    {
        string work = _dir["work"];
        if (!File.Exists(Path.Combine(work, "top.qcow2")))
        {
            QemuImg.Run(work, "create", "-q", "-f", "raw", "base.raw", "1M");
            QemuImg.Run(work, "create", "-q", "-f", "qcow2", "-u", "-b", "base.raw", "-F", "raw", "mid.qcow2", "1M");
            QemuImg.Run(work, "create", "-q", "-f", "qcow2", "-u", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2", "1M");
        }

        var statuses = new HttpStatusCode[3];
        string[] names = ["base.raw", "mid.qcow2", "top.qcow2"];
        for (int i = 0; i < names.Length; i++)
        {
            using HttpResponseMessage response = await client.SendAsync(GateScenarios.Put(names[i], File.ReadAllBytes(Path.Combine(work, names[i])), i == 0 ? "raw" : "qcow2", chunked: false));
            statuses[i] = response.StatusCode;
        }

        return statuses;
    }
}
