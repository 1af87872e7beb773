using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using System.Xml.Linq;
using BackingChain.Interop;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Interop;

/// <summary>
/// A chain read over http is written as libvirt network storage: valid against libvirt's schema, layer by layer the
/// URLs and formats <c>qemu-img info --backing-chain</c> reports for the same URL, and read back by the domain reader
/// as the same chain, safe and without drift. The images are served by a real nginx.
/// </summary>
public sealed class LibvirtNetworkXmlTests
{
    [NginxQemuFact]
    public async Task Xml_for_a_chain_over_http_is_network_storage_that_matches_qemu_img_and_reads_back_without_drift()
    {
        Assert.True(VirtXmlValidate.IsAvailable, VirtXmlValidate.MissingReason);
        using var nginx = new Nginx();
        MakeChain(nginx.Folder("images"));
        string url = nginx.Url("images/top.qcow2");
        var layers = QemuImg.Info(nginx.Root, url, backingChain: true).AsArray().Select(n => n!).ToList();
        using HttpClient client = NewClient();
        var options = new ImageChainResolverOptions
        {
            Policy = new TrustPolicy { TrustedUrlPrefixes = [nginx.Url("images/")] },
            SourceProviders = [FileImageSourceProvider.Instance, new HttpImageSourceProvider(client)],
        };

        TrustReport report;
        using (HttpImageSource top = await HttpImageSource.OpenAsync(client, url))
        {
            report = await new ImageChainResolver(options).CheckAsync(top, ImageFormat.Qcow2);
        }

        string xml = LibvirtDiskXml.ToXml(report);

        (int exit, string output) = VirtXmlValidate.ValidateDisk(nginx.Root, xml);
        Assert.True(exit == 0, output + "\n" + xml);
        XElement disk = XElement.Parse(xml);
        Assert.Equal("network", disk.Attribute("type")?.Value);
        Assert.Equal((string)layers[0]["format"]!, disk.Element("driver")?.Attribute("type")?.Value);
        Assert.Equal((string)layers[0]["filename"]!, Url(disk.Element("source")!));
        XElement current = disk;
        for (int i = 1; i < layers.Count; i++)
        {
            XElement store = Assert.Single(current.Elements("backingStore"));
            Assert.Equal("network", store.Attribute("type")?.Value);
            Assert.Equal((string)layers[i]["format"]!, store.Element("format")?.Attribute("type")?.Value);
            Assert.Equal((string)layers[i]["filename"]!, Url(store.Element("source")!));
            current = store;
        }

        XElement terminator = Assert.Single(current.Elements("backingStore"));
        Assert.True(terminator.IsEmpty && !terminator.HasAttributes);

        // Read back: the same chain, judged safe under the same policy, each layer declared, and no drift.
        ImmutableArray<LibvirtDiskChain> read = await LibvirtDomainReader.ReadAsync(new MemoryStream(Encoding.UTF8.GetBytes(xml)), options, default);
        LibvirtDiskChain back = Assert.Single(read);
        Assert.True(back.IsSafe, back.UnsafeReason);
        Assert.Empty(back.Drift);
        Assert.Equal(layers.Select(l => (string)l["filename"]!), back.Report.Layers.Select(l => l.FileName));
        Assert.All(back.Report.Layers, l => Assert.Equal(FormatSource.Declared, l.FormatSource));
    }

    [NginxQemuFact]
    public void Cli_xml_writes_a_chain_served_over_http_and_domain_reads_it_back()
    {
        Assert.True(VirtXmlValidate.IsAvailable, VirtXmlValidate.MissingReason);
        using var nginx = new Nginx();
        MakeChain(nginx.Folder("images"));
        string url = nginx.Url("images/top.qcow2");
        string prefix = nginx.Url("images/");
        int served = nginx.AccessLog().Length;

        (int exit, string xml, string stderr) = CliRunner.Run(nginx.Root, "xml", "--trust-url", prefix, "--target", "vdb", url);

        Assert.True(exit == 0, stderr);
        Assert.True(nginx.AccessLog().Length > served, "the chain is read from the server");
        (int valid, string output) = VirtXmlValidate.ValidateDisk(nginx.Root, xml);
        Assert.True(valid == 0, output + "\n" + xml);
        XElement source = XElement.Parse(xml).Element("source")!;
        Assert.Equal("http", source.Attribute("protocol")?.Value);
        Assert.Equal("images/top.qcow2", source.Attribute("name")?.Value);
        Assert.Equal(new Uri(url).Port.ToString(System.Globalization.CultureInfo.InvariantCulture), source.Element("host")?.Attribute("port")?.Value);

        // The domain document made of that element: safe only where the URLs below the top are trusted.
        string domain = Path.Combine(nginx.Root, "domain.xml");
        (int trusted, string json, string trustedErr) = CliRunner.Run(nginx.Root, "domain", "--trust-url", prefix, "--output", "json", domain);
        (int untrusted, _, _) = CliRunner.Run(nginx.Root, "domain", domain);

        Assert.True(trusted == 0, json + trustedErr);
        JsonNode vdb = JsonNode.Parse(json)!["disks"]![0]!;
        Assert.Equal("vdb", (string)vdb["target"]!);
        Assert.Empty(vdb["drift"]!.AsArray());
        Assert.Equal(3, vdb["chain"]!["layers"]!.AsArray().Count);
        Assert.Equal(1, untrusted);
    }

    [Fact]
    public void Query_of_an_https_source_is_part_of_its_name()
    {
        const string Document = "<disk type='network'><driver name='qemu' type='raw'/><source protocol='https' name='/pool/base.raw' query='v=1&amp;t=2'><host name='images.example' port='8443'/></source><backingStore/></disk>";

        LibvirtDiskChain disk = Assert.Single(LibvirtDomainReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(Document))));

        Assert.Equal("/pool/base.raw?v=1&t=2", disk.Layers[0].Name);
        Assert.Equal("https://images.example:8443/pool/base.raw?v=1&t=2", disk.Layers[0].ToString());
    }

    /// <summary>The URL a network source of the writer names: protocol, host, port, the path and the query.</summary>
    private static string Url(XElement source)
    {
        XElement host = source.Element("host")!;
        var builder = new UriBuilder(source.Attribute("protocol")!.Value, host.Attribute("name")!.Value, int.Parse(host.Attribute("port")!.Value, System.Globalization.CultureInfo.InvariantCulture), source.Attribute("name")!.Value);
        string? query = source.Attribute("query")?.Value;
        builder.Query = query ?? "";
        return builder.Uri.ToString();
    }

    private static HttpClient NewClient() => new(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(30) };

    private static void MakeChain(string folder)
    {
        QemuImg.Run(folder, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(folder, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "mid.qcow2");
        QemuImg.Run(folder, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");
    }
}
