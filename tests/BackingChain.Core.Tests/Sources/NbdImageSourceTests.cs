using System;
using System.Buffers.Binary;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Sources;

/// <summary>
/// The NBD source against qemu's own server (qemu-nbd exporting files as they are), and against servers that lie:
/// each lie ends in an <see cref="IOException"/> that says what was wrong, without waiting forever or allocating what
/// the server claims.
/// </summary>
public sealed class NbdImageSourceTests
{
    [Theory]
    [InlineData("nbd://example.org/exp", "example.org", 10809, null, "exp")]
    [InlineData("nbd://127.0.0.1:10901/a%20b", "127.0.0.1", 10901, null, "a b")]
    [InlineData("nbd+tcp://[::1]:7/x/y", "::1", 7, null, "x/y")]
    [InlineData("nbd://h:1/", "h", 1, null, "")]
    [InlineData("nbd+unix:///exp?socket=/run/n.sock", null, 0, "/run/n.sock", "exp")]
    [InlineData("nbd:h:10809", "h", 10809, null, "")]
    [InlineData("nbd:h:99:exportname=e:1", "h", 99, null, "e:1")]
    [InlineData("nbd:unix:/run/n.sock:exportname=e", null, 0, "/run/n.sock", "e")]
    public void Names_parse_as_qemu_spells_them(string name, string? host, int port, string? socket, string export)
    {
        Assert.True(NbdAddress.TryParse(name, out NbdAddress address, out string? error), error);
        Assert.Equal((host, port, socket, export), (address.Host, address.Port, address.Socket, address.Export));
    }

    [Theory]
    [InlineData("NBD://h/e")] // qemu's protocol names are case-sensitive
    [InlineData("nbd://user@h/e")]
    [InlineData("nbd://h/e?socket=/x")]
    [InlineData("nbd+unix://h/e?socket=/x")]
    [InlineData("nbd+unix:///e")]
    [InlineData("nbd+unix:///e?socket=/x&other=1")]
    [InlineData("nbd:h")]
    [InlineData("nbd:h:0")]
    [InlineData("nbd:h:65536")]
    [InlineData("nbd:unix:")]
    [InlineData("http://h/e")]
    public void Malformed_names_are_refused_with_a_reason(string name)
    {
        Assert.False(NbdAddress.TryParse(name, out _, out string? error));
        Assert.False(string.IsNullOrWhiteSpace(error));
    }

    [Fact]
    public void One_export_has_one_key_whatever_its_spelling()
    {
        Assert.True(NbdAddress.TryParse("nbd://h/e", out NbdAddress url, out _));
        Assert.True(NbdAddress.TryParse("nbd:h:10809:exportname=e", out NbdAddress colons, out _));
        Assert.Equal(url.Key, colons.Key);
    }

    [QemuNbdFact]
    public async Task Reads_the_exported_bytes_over_tcp_and_a_unix_socket()
    {
        using var dir = new ScratchDirectory();
        // A whole number of sectors: qemu's block layer rounds a file's length up to 512 bytes before it exports it.
        byte[] content = new byte[(3 * NbdImageSource.MaxRequest) + 12288];
        new Random(7).NextBytes(content);
        File.WriteAllBytes(dir["disk.raw"], content);
        using QemuNbd tcp = QemuNbd.Export(dir["disk.raw"], "disk");
        using QemuNbd unix = QemuNbd.Export(dir["disk.raw"], "disk", dir["nbd.sock"]);

        foreach (string url in new[] { tcp.Url, unix.Url })
        {
            await using IImageSource source = await NbdImageSource.OpenAsync(url, CancellationToken.None);
            Assert.Equal(content.Length, source.Length);
            Assert.Equal(url, source.Name);
            Assert.Null(source.AllocatedSize);

            // Across the request size (several requests for one read), at the end, and past it.
            byte[] all = new byte[content.Length + 100];
            Assert.Equal(content.Length, await source.ReadAtAsync(0, all));
            Assert.Equal(content, all[..content.Length]);
            byte[] tail = new byte[50];
            Assert.Equal(20, await source.ReadAtAsync(content.Length - 20, tail));
            Assert.Equal(content[^20..], tail[..20]);
            Assert.Equal(0, await source.ReadAtAsync(content.Length + 1, tail));
        }
    }

    [QemuNbdFact]
    public async Task A_missing_export_is_refused_in_words()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["disk.raw"], new byte[4096]);
        using QemuNbd server = QemuNbd.Export(dir["disk.raw"], "disk");

        IOException refused = await Assert.ThrowsAsync<IOException>(() => NbdImageSource.OpenAsync(server.Url.Replace("/disk", "/other", StringComparison.Ordinal), CancellationToken.None));
        Assert.Contains("refused the export 'other'", refused.Message, StringComparison.Ordinal);
    }

    [QemuNbdFact]
    public async Task A_chain_on_nbd_storage_reads_as_qemu_img_reads_it()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        using QemuNbd baseExport = QemuNbd.Export(dir["base.raw"], "base");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", baseExport.Url, "-F", "raw", "top.qcow2", "1M");
        using QemuNbd topExport = QemuNbd.Export(dir["top.qcow2"], "top");

        // Only what the policy admits is connected to: here a callback admits the two exports by name.
        var policy = new TrustPolicy { Callback = new TrustNames(topExport.Url, baseExport.Url) };
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = policy, SourceProviders = [NbdImageSourceProvider.Instance] });
        await using IImageSource top = await NbdImageSource.OpenAsync(topExport.Url, CancellationToken.None);
        ImageChain chain = await resolver.ResolveAsync(top);

        JsonNode expected = QemuImg.Info(dir.Path, topExport.Url, backingChain: true);
        var differences = JsonComparison.Differences(expected, JsonNode.Parse(QemuImgInfoJson.ToJson(chain)));
        Assert.True(differences.Count == 0, string.Join('\n', differences));
    }

    [QemuNbdFact]
    public async Task A_refused_nbd_name_is_never_connected_to()
    {
        using var dir = new ScratchDirectory();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", $"nbd://127.0.0.1:{port}/secret", "-F", "raw", "top.qcow2", "1M");

        var resolver = new ImageChainResolver(new ImageChainResolverOptions { SourceProviders = [ImageSources.Files, NbdImageSourceProvider.Instance] });
        ImageChain chain = await resolver.ResolveAsync(dir["top.qcow2"]);

        Assert.Single(chain.Layers);
        Assert.False(listener.Pending());
    }

    public static TheoryData<string, byte[]> LyingServers => new()
    {
        { "not NBD", "HTTP/1.1 200 OK\r\n\r\n"u8.ToArray() },
        { "oldstyle", Greeting(0x00420281861253, 0) },
        { "not fixed newstyle", Greeting(0x49484156454f5054, 0) },
        { "huge option reply", [.. Greeting(), .. OptionReply(3, uint.MaxValue)] },
        { "reply to another option", [.. Greeting(), .. OptionReply(3, 12, option: 1)] },
        { "export too large", [.. Greeting(), .. OptionReply(3, 12), 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0] },
        { "ack without a size", [.. Greeting(), .. OptionReply(1, 0)] },
        { "endless information", EndlessInformation() },
        { "closed mid-handshake", Greeting()[..10] },
    };

    [Theory]
    [MemberData(nameof(LyingServers))]
    public async Task A_lying_server_ends_in_an_io_error(string lie, byte[] script)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task serving = ServeAsync(listener, script);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        IOException error = await Assert.ThrowsAsync<IOException>(
            () => NbdImageSource.OpenAsync($"nbd://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/e", deadline.Token));
        Assert.False(deadline.IsCancellationRequested, lie);
        Assert.DoesNotContain("_", error.Message, StringComparison.Ordinal); // words, not resource keys
        await serving;
    }

    [Theory]
    [InlineData(uint.MaxValue)]
    [InlineData(NbdImageSource.MaxOptionReply + 1u)]
    public async Task An_option_reply_longer_than_the_bound_is_refused_before_it_is_read(uint claimed)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task serving = ServeAsync(listener, [.. Greeting(), .. OptionReply(3, claimed), .. new byte[NbdImageSource.MaxOptionReply + 1]]);

        IOException error = await Assert.ThrowsAsync<IOException>(
            () => NbdImageSource.OpenAsync($"nbd://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/e", CancellationToken.None));
        Assert.Contains($"claims {claimed} bytes", error.Message, StringComparison.Ordinal);
        await serving;
    }

    [Fact]
    public async Task A_silent_server_is_given_up_at_the_callers_deadline()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => NbdImageSource.OpenAsync($"nbd://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/e", deadline.Token));
    }

    [Fact]
    public async Task A_reply_to_a_read_not_asked_is_refused_and_the_connection_given_up()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        byte[] wrongCookie = new byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(wrongCookie, 0x67446698);
        BinaryPrimitives.WriteUInt64BigEndian(wrongCookie.AsSpan(8), 999);
        byte[] export = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(export.AsSpan(2), 4096);
        Task serving = ServeAsync(listener, [.. Greeting(), .. OptionReply(3, 12), .. export, .. OptionReply(1, 0), .. wrongCookie], holdOpen: true);

        await using (IImageSource source = await NbdImageSource.OpenAsync($"nbd://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/e", CancellationToken.None))
        {
            Assert.Equal(4096, source.Length);
            IOException first = await Assert.ThrowsAsync<IOException>(async () => await source.ReadAtAsync(0, new byte[512]));
            Assert.Contains("not asked", first.Message, StringComparison.Ordinal);
            IOException second = await Assert.ThrowsAsync<IOException>(async () => await source.ReadAtAsync(0, new byte[512]));
            Assert.Contains("given up", second.Message, StringComparison.Ordinal);
        }

        // The source hung up when disposed, so the server's loop ends.
        listener.Stop();
        await serving;
    }

    private static byte[] Greeting(ulong second = 0x49484156454f5054, ushort flags = 3)
    {
        byte[] greeting = new byte[18];
        BinaryPrimitives.WriteUInt64BigEndian(greeting, 0x4e42444d41474943);
        BinaryPrimitives.WriteUInt64BigEndian(greeting.AsSpan(8), second);
        BinaryPrimitives.WriteUInt16BigEndian(greeting.AsSpan(16), flags);
        return greeting;
    }

    private static byte[] OptionReply(uint type, uint length, uint option = 7)
    {
        byte[] reply = new byte[20];
        BinaryPrimitives.WriteUInt64BigEndian(reply, 0x0003e889045565a9);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(12), type);
        BinaryPrimitives.WriteUInt32BigEndian(reply.AsSpan(16), length);
        return reply;
    }

    private static byte[] EndlessInformation()
    {
        var script = new System.Collections.Generic.List<byte>(Greeting());
        for (int i = 0; i < NbdImageSource.MaxOptionReplies + 1; i++)
        {
            script.AddRange(OptionReply(3, 4));
            script.AddRange(new byte[] { 0, 2, 0, 0 }); // NBD_INFO_DESCRIPTION, set aside
        }

        return [.. script];
    }

    /// <summary>Accepts one client, sends the script whatever it asks, and closes (or waits for the client to leave).</summary>
    private static async Task ServeAsync(TcpListener listener, byte[] script, bool holdOpen = false)
    {
        using TcpClient client = await listener.AcceptTcpClientAsync();
        NetworkStream stream = client.GetStream();
        try
        {
            await stream.WriteAsync(script);
            if (holdOpen)
            {
                byte[] sink = new byte[4096];
                while (await stream.ReadAsync(sink) > 0)
                {
                }
            }
            else
            {
                // Let the client read everything before the connection closes.
                client.Client.Shutdown(SocketShutdown.Send);
                byte[] sink = new byte[4096];
                using var linger = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                while (await stream.ReadAsync(sink, linger.Token) > 0)
                {
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
        {
            // The client hung up first: that is the point.
        }
    }

    private sealed class TrustNames(params string[] names) : IImageTrust
    {
        public bool IsTrusted(ImageReference reference, string? canonicalPath) =>
            Array.IndexOf(names, reference.FullName) >= 0;
    }
}
