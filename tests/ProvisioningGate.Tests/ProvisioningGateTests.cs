using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Tests.Infrastructure;

namespace ProvisioningGate.Tests;

/// <summary>The hostile uploads, made once with qemu-img.</summary>
public sealed class HostileImagesFixture : IDisposable
{
    private readonly ScratchDirectory _scratch = new();

    public HostileImagesFixture()
    {
        Uploads = QemuImg.IsAvailable ? HostileImages.Build(_scratch.Path) : [];
    }

    public List<HostileUpload> Uploads { get; }

    public void Dispose() => _scratch.Dispose();
}

public sealed class InProcessGateTests(HostileImagesFixture images) : IClassFixture<HostileImagesFixture>
{
    [QemuImgFact]
    public async Task Every_hostile_upload_is_refused_and_not_stored()
    {
        using var host = new InProcessGateHost();
        foreach (HostileUpload upload in images.Uploads)
        {
            await GateScenarios.HostileUploadIsRefusedAndNotStoredAsync(host, upload, chunked: false);
        }
    }

    [QemuImgFact]
    public async Task Every_hostile_upload_sent_without_length_is_refused_and_not_stored()
    {
        using var host = new InProcessGateHost();
        foreach (HostileUpload upload in images.Uploads)
        {
            await GateScenarios.HostileUploadIsRefusedAndNotStoredAsync(host, upload, chunked: true);
        }
    }

    /// <summary>
    /// The gate trusts a backing name by its canonical path, so when the image root is given through a symbolic link an
    /// overlay may name its base by the real folder: the base is then in use whatever the spelling, and is not deleted.
    /// </summary>
    [QemuImgFact]
    public async Task A_base_named_by_the_real_path_of_a_root_given_through_a_link_is_in_use_and_not_deleted()
    {
        using var host = new InProcessGateHost(rootThroughLink: true);
        string work = Path.Combine(host.WorkDirectory, "work");
        Directory.CreateDirectory(work);
        string otherRoot = Path.Combine(host.WorkDirectory, "real-images");

        QemuImg.Run(work, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(work, "create", "-q", "-f", "qcow2", "-u", "-b", Path.Combine(otherRoot, "base.raw"), "-F", "raw", "top.qcow2", "1M");
        using (HttpResponseMessage stored = await host.Client.SendAsync(GateScenarios.Put("base.raw", File.ReadAllBytes(Path.Combine(work, "base.raw")), "raw", chunked: false)))
        {
            Assert.Equal(HttpStatusCode.Created, stored.StatusCode);
        }

        using (HttpResponseMessage overlay = await host.Client.SendAsync(GateScenarios.Put("top.qcow2", File.ReadAllBytes(Path.Combine(work, "top.qcow2")), "qcow2", chunked: false)))
        {
            Assert.True(overlay.StatusCode == HttpStatusCode.Created, await overlay.Content.ReadAsStringAsync());
        }

        using (HttpResponseMessage inUse = await host.Client.DeleteAsync("/images/base.raw"))
        {
            Assert.Equal(HttpStatusCode.Conflict, inUse.StatusCode);
            Assert.Contains("top.qcow2", await inUse.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.True(File.Exists(Path.Combine(host.ImageRoot, "base.raw")));
        JsonNode chain = JsonNode.Parse(await host.Client.GetStringAsync("/images/top.qcow2/chain"))!;
        Assert.Equal("safe", (string?)chain["verdict"]);

        using (HttpResponseMessage top = await host.Client.DeleteAsync("/images/top.qcow2"))
        {
            Assert.Equal(HttpStatusCode.NoContent, top.StatusCode);
        }

        using HttpResponseMessage freed = await host.Client.DeleteAsync("/images/base.raw");
        Assert.Equal(HttpStatusCode.NoContent, freed.StatusCode);
    }

    [QemuImgFact]
    public async Task Benign_chain_uploaded_base_first_is_accepted_and_its_chain_is_safe()
    {
        using var host = new InProcessGateHost();
        await GateScenarios.BenignChainIsAcceptedAndSafeAsync(host, chunked: false);
    }

    [Theory]
    [InlineData("..")]
    [InlineData(".hidden")]
    [InlineData("..%2Fescape")]
    [InlineData("a%2F..%2F..%2Fetc")]
    [InlineData("a%5C..%5C..%5Cetc")]
    [InlineData("with%20space")]
    public async Task Names_leaving_the_root_or_hidden_are_refused(string name)
    {
        using var host = new InProcessGateHost();

        using HttpResponseMessage response = await host.Client.SendAsync(GateScenarios.Put(name, [1, 2, 3], null, chunked: false));

        Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed, $"{name}: {(int)response.StatusCode}");
        GateScenarios.AssertNothingStored(host);
        Assert.All(Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(host.ImageRoot)!), e => Assert.StartsWith(host.ImageRoot, e, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Unknown_format_is_a_bad_request()
    {
        using var host = new InProcessGateHost();

        using HttpResponseMessage response = await host.Client.SendAsync(GateScenarios.Put("disk.img", [1, 2, 3], "floppy", chunked: false));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        GateScenarios.AssertNothingStored(host);
    }

    [Fact]
    public async Task Accepted_format_is_recorded_and_used_for_later_reads()
    {
        // Declared raw, the content is a qcow2 header: stored as raw, and the chain endpoint must read it as raw,
        // not probe it again (probed, it would be a qcow2 naming /etc/passwd and be refused).
        using var host = new InProcessGateHost();
        byte[] forged = new byte[4096];
        "QFI\xfb"u8.CopyTo(forged);
        forged[7] = 3;

        using HttpResponseMessage put = await host.Client.SendAsync(GateScenarios.Put("guest.raw", forged, "raw", chunked: false));
        string chain = await host.Client.GetStringAsync("/images/guest.raw/chain");

        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Contains("\"format\": \"raw\"", chain, StringComparison.Ordinal);
        Assert.Contains("\"format-source\": \"declared\"", chain, StringComparison.Ordinal);
        Assert.Contains("\"verdict\": \"safe\"", chain, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public async Task A_sparse_raw_upload_is_stored_identical_with_only_its_data_allocated()
    {
        // The case, at a quarter of the size: before, the service stored every zero (976 MiB for 1 GiB).
        using var host = new InProcessGateHost();
        string source = Path.Combine(host.WorkDirectory, "upload.raw");
        QemuImg.Run(host.WorkDirectory, "create", "-q", "-f", "raw", source, "256M");
        byte[] data = new byte[1024 * 1024];
        new Random(21).NextBytes(data);
        await using (var file = new FileStream(source, FileMode.Open, FileAccess.Write))
        {
            file.Position = 100L * 1024 * 1024 + 4097;
            file.Write(data);
        }

        HttpStatusCode status;
        await using (FileStream body = File.OpenRead(source))
        {
            var request = new HttpRequestMessage(HttpMethod.Put, "/images/disk.raw?format=raw") { Content = new StreamContent(body, 1024 * 1024) };
            request.Content.Headers.ContentLength = body.Length;
            using HttpResponseMessage response = await host.Client.SendAsync(request);
            status = response.StatusCode;
        }

        string stored = Path.Combine(host.ImageRoot, "disk.raw");
        Assert.Equal(HttpStatusCode.Created, status);
        ProcessResult cmp = ProcessRunner.Run("cmp", [source, stored]);
        Assert.True(cmp.ExitCode == 0, cmp.StandardOutput + cmp.StandardError);
        long allocated = long.Parse(ProcessRunner.Run("stat", ["-c", "%b", stored]).Require("stat").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;
        Assert.InRange(allocated, 1024 * 1024, 16 * 1024 * 1024);
    }

    [Fact]
    public async Task Missing_image_is_not_found()
    {
        using var host = new InProcessGateHost();

        Assert.Equal(HttpStatusCode.NotFound, (await host.Client.GetAsync("/images/nothing/chain")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await host.Client.GetAsync("/images/nothing/domain-disk")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await host.Client.DeleteAsync("/images/nothing")).StatusCode);
    }
}
