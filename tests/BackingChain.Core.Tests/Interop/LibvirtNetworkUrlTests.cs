using System;
using System.Collections.Immutable;
using System.IO;
using System.Net.Http;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Interop;

/// <summary>
/// A network source's name is judged as the URL libvirt hands qemu. The oracle for that URL is libxml2's own
/// <c>xmlSaveUri</c>, called here the way libvirt's virURIFormat calls it (scheme, server, port, the path "/" + name,
/// the query raw); the oracle for what is then fetched is qemu-img's curl driver against nginx's access log.
/// </summary>
public sealed class LibvirtNetworkUrlTests
{
    [Theory]
    [InlineData("images/base.raw#/../../secret/s.raw", null)]
    [InlineData("images/base.raw?x=1/../../secret", null)]
    [InlineData("%2e%2e/%2E%2E/secret/s.raw", null)]
    [InlineData("a b/c:d;e@f&g=h+i$j,k", "q=1&r=a b#frag")]
    [InlineData("/abs/~u/(x)*!'-_.raw", null)]
    [InlineData("..;/..;/secret/s.raw", null)]
    [InlineData("d\u00e9j\u00e0/\u65e5\u672c.raw", "v=\u00e9")]
    [InlineData("back\\slash/x.raw", null)]
    public void The_url_is_the_one_libvirt_formats(string name, string? query)
    {
        var layer = new LibvirtDiskLayer("network", "raw", null, "http", name, query, ["127.0.0.1:8080"], null);

        Assert.Equal(LibxmlSaveUri("http", "127.0.0.1", 8080, name.StartsWith('/') ? name : "/" + name, query), LibvirtNetworkName.ToUrl(layer));
    }

    [NginxQemuFact]
    public async Task A_name_under_a_trusted_prefix_that_libcurl_reads_outside_it_is_refused()
    {
        using var nginx = new Nginx();
        QemuImg.Run(nginx.Folder("images"), "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(nginx.Folder("secret"), "create", "-q", "-f", "raw", "s.raw", "2M");
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "top.qcow2", "1M");
        const string Hostile = "images/base.raw#/../../secret/s.raw";
        string host = $"<host name='127.0.0.1' port='{nginx.Port}'/>";
        string Document(string name) => $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["top.qcow2"]}'/>"
            + $"<backingStore type='network'><format type='raw'/><source protocol='http' name='{name}'>{host}</source><backingStore/></backingStore><target dev='vda' bus='virtio'/></disk>";
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(30) };
        var options = new ImageChainResolverOptions
        {
            Policy = new TrustPolicy { TrustedUrlPrefixes = [nginx.Url("images/")] },
            SourceProviders = [ImageSources.Files, ImageSources.Http(client)],
        };

        // What qemu fetches for the URL libvirt builds: the secret, outside the prefix.
        string libvirtUrl = LibxmlSaveUri("http", "127.0.0.1", nginx.Port, "/" + Hostile, null);
        int before = nginx.AccessLog().Length;
        QemuImg.Run(dir.Path, "info", "-f", "raw", libvirtUrl);
        Assert.Contains(" /secret/s.raw HTTP", nginx.AccessLog()[before..], StringComparison.Ordinal);

        before = nginx.AccessLog().Length;
        LibvirtDiskChain hostile = await ReadAsync(Document(Hostile), options);
        string served = nginx.AccessLog()[before..];
        LibvirtDiskChain plain = await ReadAsync(Document("images/base.raw"), options);

        // The plain name is trusted and read; the hostile one is refused before any request.
        Assert.True(plain.IsSafe, plain.UnsafeReason);
        Assert.False(hostile.IsSafe);
        ReferenceDecision refused = Assert.Single(hostile.Report.Chain.Decisions, d => d.LayerIndex == 0);
        Assert.Equal(ReferenceOutcome.Refused, refused.Outcome);
        Assert.Equal(string.Empty, served);
    }

    private static async Task<LibvirtDiskChain> ReadAsync(string document, ImageChainResolverOptions options)
    {
        ImmutableArray<LibvirtDiskChain> disks = await LibvirtDomainReader.ReadAsync(new MemoryStream(Encoding.UTF8.GetBytes(document)), options);
        return Assert.Single(disks);
    }

    /// <summary>libxml2's <c>xmlSaveUri</c> on the fields virURIFormat fills (it puts the query in <c>query_raw</c>).</summary>
    private static string LibxmlSaveUri(string scheme, string server, int port, string path, string? query)
    {
        IntPtr[] strings = [Utf8(scheme), Utf8(server), Utf8(path), query is null ? IntPtr.Zero : Utf8(query)];
        try
        {
            var uri = new XmlUri { Scheme = strings[0], Server = strings[1], Port = port, Path = strings[2], QueryRaw = strings[3] };
            IntPtr saved = xmlSaveUri(ref uri);
            return Marshal.PtrToStringUTF8(saved)!;
        }
        finally
        {
            foreach (IntPtr s in strings)
            {
                Marshal.FreeHGlobal(s);
            }
        }
    }

    private static IntPtr Utf8(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text + "\0");
        IntPtr memory = Marshal.AllocHGlobal(bytes.Length);
        Marshal.Copy(bytes, 0, memory, bytes.Length);
        return memory;
    }

    [DllImport("libxml2.so.2")]
    private static extern IntPtr xmlSaveUri(ref XmlUri uri);

    /// <summary>libxml2's <c>struct _xmlURI</c> (uri.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct XmlUri
    {
        public IntPtr Scheme;
        public IntPtr Opaque;
        public IntPtr Authority;
        public IntPtr Server;
        public IntPtr User;
        public int Port;
        public IntPtr Path;
        public IntPtr Query;
        public IntPtr Fragment;
        public int Cleanup;
        public IntPtr QueryRaw;
    }
}
