using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Tests.Infrastructure;

namespace ProvisioningGate.Tests;

/// <summary>
/// Names fit for clients: no response meant for a tenant — accepted uploads, refused ones (problem details with their
/// findings), chains, the store scan, conflicts, errors — carries the image root's absolute path (nor the real folder
/// behind a root given through a link); the libvirt <c>&lt;disk&gt;</c> for the host keeps the absolute paths libvirt
/// needs. Problem details go through the app's <c>IProblemDetailsService</c>: a <c>traceId</c> and
/// <c>application/problem+json</c>. And the store scan reads each image by its sidecar.
/// </summary>
public sealed class TenantNamesTests(HostileImagesFixture images) : IClassFixture<HostileImagesFixture>
{
    [QemuImgTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task No_response_meant_for_a_tenant_names_the_image_root(bool rootThroughLink)
    {
        using var host = new InProcessGateHost(rootThroughLink);
        string[] secrets = [host.ImageRoot, Path.Combine(host.WorkDirectory, "real-images"), host.WorkDirectory];
        var seen = new List<string>();
        async Task<string> Tenant(HttpResponseMessage response, HttpStatusCode expected)
        {
            using (response)
            {
                string body = await response.Content.ReadAsStringAsync();
                string where = $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}";
                Assert.True(response.StatusCode == expected, $"{where}: {(int)response.StatusCode} {body}");
                foreach (string secret in secrets)
                {
                    Assert.False(body.Contains(secret, StringComparison.Ordinal), $"{where} names '{secret}':\n{body}");
                    Assert.DoesNotContain(secret, response.Headers.Location?.OriginalString ?? "", StringComparison.Ordinal);
                }

                if ((int)expected >= 400 && expected != HttpStatusCode.NotFound)
                {
                    Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                    Assert.False(string.IsNullOrEmpty((string?)JsonNode.Parse(body)!["traceId"]), $"{where}: no traceId\n{body}");
                }

                seen.Add(body);
                return body;
            }
        }

        string work = Path.Combine(host.WorkDirectory, "work");
        Directory.CreateDirectory(work);
        QemuImg.Run(work, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(work, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");
        QemuImg.Run(work, "create", "-q", "-f", "qcow2", "-u", "-b", Path.Combine(host.ImageRoot, "base.raw"), "-F", "raw", "absolute.qcow2", "1M");
        QemuImg.Run(work, "create", "-q", "-f", "qcow2", "-u", "-b", "missing.raw", "-F", "raw", "orphan.qcow2", "1M");
        byte[] Bytes(string file) => File.ReadAllBytes(Path.Combine(work, file));

        // Refused: a base not stored yet (its absolute path is in the finding, the detail and the nested report).
        string missing = await Tenant(await host.Client.SendAsync(GateScenarios.Put("orphan.qcow2", Bytes("orphan.qcow2"), "qcow2", chunked: false)), HttpStatusCode.UnprocessableEntity);
        Assert.Contains("missing.raw", missing, StringComparison.Ordinal);
        foreach (HostileUpload upload in images.Uploads)
        {
            await Tenant(await host.Client.SendAsync(GateScenarios.Put("tenant.img", upload.Bytes, upload.Format, chunked: false)), HttpStatusCode.UnprocessableEntity);
        }

        // Accepted: the report's filename is the image's name, and a backing name the tenant wrote absolute is shown relative.
        await Tenant(await host.Client.SendAsync(GateScenarios.Put("base.raw", Bytes("base.raw"), "raw", chunked: false)), HttpStatusCode.Created);
        string top = await Tenant(await host.Client.SendAsync(GateScenarios.Put("top.qcow2", Bytes("top.qcow2"), "qcow2", chunked: true)), HttpStatusCode.Created);
        Assert.Equal("top.qcow2", (string?)JsonNode.Parse(top)!["report"]!["layers"]![0]!["filename"]);
        string absolute = await Tenant(await host.Client.SendAsync(GateScenarios.Put("absolute.qcow2", Bytes("absolute.qcow2"), "qcow2", chunked: false)), HttpStatusCode.Created);
        Assert.Equal("base.raw", (string?)JsonNode.Parse(absolute)!["references"]![0]!["name"]);

        // Refused before the gate: a bad name, an unknown format, a name in use.
        await Tenant(await host.Client.SendAsync(GateScenarios.Put(".hidden", [1], null, chunked: false)), HttpStatusCode.BadRequest);
        await Tenant(await host.Client.SendAsync(GateScenarios.Put("x.img", [1], "floppy", chunked: false)), HttpStatusCode.BadRequest);
        await Tenant(await host.Client.SendAsync(GateScenarios.Put("base.raw", [1], null, chunked: false)), HttpStatusCode.Conflict);

        string chain = await Tenant(await host.Client.GetAsync("/images/top.qcow2/chain"), HttpStatusCode.OK);
        Assert.Equal(["top.qcow2", "base.raw"], JsonNode.Parse(chain)!["layers"]!.AsArray().Select(l => (string?)l!["filename"]));
        await Tenant(await host.Client.GetAsync("/images"), HttpStatusCode.OK);
        await Tenant(await host.Client.DeleteAsync("/images/base.raw"), HttpStatusCode.Conflict);
        await Tenant(await host.Client.GetAsync("/images/nothing/chain"), HttpStatusCode.NotFound);

        // For the host: libvirt needs the absolute paths, and gets them.
        string xml = await host.Client.GetStringAsync("/images/top.qcow2/domain-disk");
        Assert.Contains(Path.Combine(host.ImageRoot, "base.raw"), xml, StringComparison.Ordinal);

        // The base removed behind the service's back: the chain, the refused disk XML and the scan name it relative.
        File.Delete(Path.Combine(host.ImageRoot, "base.raw"));
        string broken = await Tenant(await host.Client.GetAsync("/images/top.qcow2/chain"), HttpStatusCode.OK);
        Assert.Equal("unsafe", (string?)JsonNode.Parse(broken)!["verdict"]);
        Assert.Contains("'base.raw'", broken, StringComparison.Ordinal);
        string refused = await Tenant(await host.Client.GetAsync("/images/top.qcow2/domain-disk"), HttpStatusCode.Conflict);
        Assert.Contains("base.raw", refused, StringComparison.Ordinal);
        await Tenant(await host.Client.GetAsync("/images"), HttpStatusCode.OK);
        await Tenant(await host.Client.DeleteAsync("/images/top.qcow2"), HttpStatusCode.NoContent);

        // What was checked had the paths to hide: the writers were given them, and mapped them.
        Assert.Contains(seen, body => body.Contains("qemu-img", StringComparison.Ordinal) || body.Contains("findings", StringComparison.Ordinal));
    }

    [QemuImgFact]
    public async Task The_store_scan_reads_each_image_by_its_sidecar_so_a_declared_raw_image_names_nothing()
    {
        using var host = new InProcessGateHost();
        string work = Path.Combine(host.WorkDirectory, "work");
        Directory.CreateDirectory(work);
        QemuImg.Run(work, "create", "-q", "-f", "qcow2", "victim.qcow2", "1M");

        // A guest's raw disk whose first sector is a qcow2 header naming another tenant's image of the store.
        QemuImg.Run(work, "create", "-q", "-f", "qcow2", "-u", "-b", "victim.qcow2", "-F", "qcow2", "guest.raw", "1M");
        foreach ((string name, string format) in new[] { ("victim.qcow2", "qcow2"), ("guest.raw", "raw") })
        {
            using HttpResponseMessage put = await host.Client.SendAsync(GateScenarios.Put(name, File.ReadAllBytes(Path.Combine(work, name)), format, chunked: false));
            Assert.True(put.StatusCode == HttpStatusCode.Created, await put.Content.ReadAsStringAsync());
        }

        // The oracle: read as raw, qemu-img sees no backing file; probed, the forged one.
        string stored = Path.Combine(host.ImageRoot, "guest.raw");
        Assert.Null(QemuImg.Info(host.ImageRoot, stored, format: "raw")["backing-filename"]);
        Assert.Equal("victim.qcow2", (string?)QemuImg.Info(host.ImageRoot, stored)["backing-filename"]);

        JsonNode scan = JsonNode.Parse(await host.Client.GetStringAsync("/images"))!;
        JsonNode Image(string name) => scan["images"]!.AsArray().Single(i => (string?)i!["name"] == name)!;
        JsonNode guest = Image("guest.raw")["report"]!;
        Assert.Equal("safe", (string?)guest["verdict"]);
        JsonNode layer = Assert.Single(guest["layers"]!.AsArray())!;
        Assert.Equal(("raw", "declared"), ((string?)layer["format"], (string?)layer["format-source"]));
        Assert.Empty(layer["references"]!.AsArray());
        Assert.Empty(Image("victim.qcow2")["used-by"]!.AsArray());
    }
}
