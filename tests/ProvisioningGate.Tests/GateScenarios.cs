using System;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Tests.Infrastructure;

namespace ProvisioningGate.Tests;

/// <summary>What every host of the sample must answer the same way, in process or over a socket, with or without chunked bodies.</summary>
public static class GateScenarios
{
    public static HttpRequestMessage Put(string name, byte[] bytes, string? format, bool chunked)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"/images/{name}{(format is null ? "" : "?format=" + format)}");
        if (chunked)
        {
            // A stream of unknown length: the client has to send it chunked, without Content-Length.
            request.Content = new StreamContent(new UnknownLengthStream(bytes));
            request.Headers.TransferEncodingChunked = true;
        }
        else
        {
            request.Content = new ByteArrayContent(bytes);
        }

        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return request;
    }

    public static async Task HostileUploadIsRefusedAndNotStoredAsync(GateHost host, HostileUpload upload, bool chunked)
    {
        using HttpResponseMessage response = await host.Client.SendAsync(Put("tenant.img", upload.Bytes, upload.Format, chunked));

        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"{upload.Kind}: {(int)response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        JsonNode problem = JsonNode.Parse(body)!;
        Assert.StartsWith("tag:backingchain.core,2026:problem:", (string?)problem["type"], StringComparison.Ordinal);
        Assert.Equal(422, (int?)problem["status"]);
        Assert.NotEmpty(problem["findings"]!.AsArray());
        AssertNothingStored(host);
    }

    public static async Task BenignChainIsAcceptedAndSafeAsync(GateHost host, bool chunked)
    {
        string work = Path.Combine(host.WorkDirectory, "benign");
        Directory.CreateDirectory(work);
        QemuImg.Run(work, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(work, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");

        using (HttpResponseMessage overlayFirst = await host.Client.SendAsync(Put("top.qcow2", File.ReadAllBytes(Path.Combine(work, "top.qcow2")), "qcow2", chunked)))
        {
            // Base first: an overlay whose base is not stored yet names a missing file, and is refused.
            Assert.Equal(HttpStatusCode.UnprocessableEntity, overlayFirst.StatusCode);
        }

        using HttpResponseMessage baseResponse = await host.Client.SendAsync(Put("base.raw", File.ReadAllBytes(Path.Combine(work, "base.raw")), null, chunked));
        Assert.True(baseResponse.StatusCode == HttpStatusCode.Created, await baseResponse.Content.ReadAsStringAsync());
        JsonNode baseInspection = JsonNode.Parse(await baseResponse.Content.ReadAsStringAsync())!;
        Assert.Equal("raw", (string?)baseInspection["format"]);
        Assert.Equal("probed", (string?)baseInspection["format-source"]);

        using HttpResponseMessage topResponse = await host.Client.SendAsync(Put("top.qcow2", File.ReadAllBytes(Path.Combine(work, "top.qcow2")), "qcow2", chunked));
        string topBody = await topResponse.Content.ReadAsStringAsync();
        Assert.True(topResponse.StatusCode == HttpStatusCode.Created, topBody);
        Assert.Equal("/images/top.qcow2", topResponse.Headers.Location?.OriginalString);
        JsonNode topInspection = JsonNode.Parse(topBody)!;
        Assert.Equal("accepted", (string?)topInspection["verdict"]);
        Assert.Equal("base.raw", (string?)topInspection["references"]![0]!["name"]);

        JsonNode chain = JsonNode.Parse(await host.Client.GetStringAsync("/images/top.qcow2/chain"))!;
        Assert.Equal("safe", (string?)chain["verdict"]);
        Assert.Equal(["qcow2", "raw"], chain["layers"]!.AsArray().Select(l => (string?)l!["format"]));
        Assert.Equal(["declared", "recorded"], chain["layers"]!.AsArray().Select(l => (string?)l!["format-source"]));

        string xml = await host.Client.GetStringAsync("/images/top.qcow2/domain-disk");
        Assert.Contains("<backingStore type=\"file\">", xml, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(host.ImageRoot, "base.raw"), xml, StringComparison.Ordinal);

        using (HttpResponseMessage again = await host.Client.SendAsync(Put("base.raw", [1, 2, 3], null, chunked)))
        {
            Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        }

        using (HttpResponseMessage inUse = await host.Client.DeleteAsync("/images/base.raw"))
        {
            Assert.Equal(HttpStatusCode.Conflict, inUse.StatusCode);
            Assert.Contains("top.qcow2", await inUse.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (HttpResponseMessage top = await host.Client.DeleteAsync("/images/top.qcow2"))
        {
            Assert.Equal(HttpStatusCode.NoContent, top.StatusCode);
        }

        using (HttpResponseMessage base_ = await host.Client.DeleteAsync("/images/base.raw"))
        {
            Assert.Equal(HttpStatusCode.NoContent, base_.StatusCode);
        }

        AssertNothingStored(host);
    }

    /// <summary>The image root holds nothing, and no upload is left half-written.</summary>
    public static void AssertNothingStored(GateHost host)
    {
        // A request refused before the store was first used leaves its folders uncreated: that is empty too.
        Assert.Empty(Directory.Exists(host.ImageRoot) ? Directory.EnumerateFileSystemEntries(host.ImageRoot) : []);
        Assert.Empty(Directory.Exists(host.IncomingRoot) ? Directory.EnumerateFileSystemEntries(host.IncomingRoot) : []);
    }

    /// <summary>A body whose length the client cannot know in advance.</summary>
    private sealed class UnknownLengthStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 4096));

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
