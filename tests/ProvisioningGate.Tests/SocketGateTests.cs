using System;
using System.Collections.Concurrent;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Threading.Tasks;
using BackingChain.Tests.Infrastructure;

namespace ProvisioningGate.Tests;

/// <summary>The sample in its own process, on a free port of 127.0.0.1, started as the README says.</summary>
public sealed class SocketGateTests(HostileImagesFixture images) : IClassFixture<HostileImagesFixture>
{
    [QemuImgFact]
    public async Task Over_a_socket_hostile_uploads_are_refused_benign_chain_accepted_with_and_without_chunked_bodies()
    {
        using var host = new SocketGateHost();
        foreach (bool chunked in new[] { false, true })
        {
            foreach (HostileUpload upload in images.Uploads)
            {
                await GateScenarios.HostileUploadIsRefusedAndNotStoredAsync(host, upload, chunked);
            }

            await GateScenarios.BenignChainIsAcceptedAndSafeAsync(host, chunked);
        }
    }

    /// <summary>
    /// 40 uploads at once (bounded: loopback only, small images): hostile and benign, some clients vanishing mid-body,
    /// some sending more bytes than their Content-Length. Every verdict must be right, only the benign images stored,
    /// no temporary file left, and the service must still answer.
    /// </summary>
    [QemuImgFact]
    public async Task Under_load_every_verdict_is_right_nothing_partial_is_left_and_the_service_still_answers()
    {
        using var host = new SocketGateHost();
        Uri address = host.SocketAddress!;
        HostileUpload[] hostile = [.. images.Uploads.Where(u => u.Bytes.Length > 0)];
        byte[] benign = new byte[256 * 1024];
        new Random(11).NextBytes(benign);
        benign[0] = 0; // never a format's magic by chance

        var outcomes = new ConcurrentDictionary<int, string>();
        await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
        {
            string name = $"load-{i}.img";
            switch (i % 5)
            {
                case 0:
                case 1:
                {
                    using HttpResponseMessage response = await host.Client.SendAsync(GateScenarios.Put(name, benign, null, chunked: i % 2 == 0));
                    outcomes[i] = ((int)response.StatusCode).ToString();
                    break;
                }

                case 2:
                {
                    HostileUpload upload = hostile[i % hostile.Length];
                    using HttpResponseMessage response = await host.Client.SendAsync(GateScenarios.Put(name, upload.Bytes, upload.Format, chunked: i % 2 == 0));
                    outcomes[i] = ((int)response.StatusCode).ToString();
                    break;
                }

                case 3:
                    // Announces the whole image, sends half, and goes away.
                    await RawPutAsync(address, name, announced: benign.Length, body: benign.AsMemory(0, benign.Length / 2), readResponse: false);
                    outcomes[i] = "gone";
                    break;

                default:
                {
                    // More bytes than announced: the body is what Content-Length says (a hostile prefix), the rest is
                    // not part of it. The hostile header sits in the announced part, so the verdict is still a refusal.
                    HostileUpload upload = hostile[0];
                    byte[] longer = [.. upload.Bytes, .. new byte[4096]];
                    outcomes[i] = await RawPutAsync(address, name, announced: upload.Bytes.Length, body: longer, readResponse: true);
                    break;
                }
            }
        })));

        for (int i = 0; i < 40; i++)
        {
            string expected = (i % 5) switch { 0 or 1 => "201", 3 => "gone", _ => "422" };
            Assert.True(outcomes[i] == expected, $"upload {i}: {outcomes[i]}, expected {expected}");
        }

        // The service is still answering: a fresh upload goes through, and every stored image reads back.
        using (HttpResponseMessage after = await host.Client.SendAsync(GateScenarios.Put("after.img", benign, null, chunked: false)))
        {
            Assert.Equal(HttpStatusCode.Created, after.StatusCode);
        }

        string[] expectedStored = [.. Enumerable.Range(0, 40).Where(i => i % 5 is 0 or 1).Select(i => $"load-{i}.img"), "after.img"];
        Assert.Equal(expectedStored.Order(), Directory.EnumerateFiles(host.ImageRoot).Select(Path.GetFileName).Order());
        foreach (string name in expectedStored)
        {
            Assert.Equal(benign, File.ReadAllBytes(Path.Combine(host.ImageRoot, name)));
        }

        // The abandoned uploads are cleaned up as the server notices each connection is gone; wait for that, boundedly.
        for (int attempt = 0; attempt < 300 && Directory.EnumerateFileSystemEntries(host.IncomingRoot).Any(); attempt++)
        {
            await Task.Delay(100);
        }

        Assert.Empty(Directory.EnumerateFileSystemEntries(host.IncomingRoot));

        // The stated bound: 40 uploads at once hold at most their windows (4 MiB head + 64 KiB tail + a 64 KiB read
        // each, far less for raw) over the runtime's own ~100 MB, so the whole service stays under 512 MiB.
        Assert.InRange(host.PeakResidentBytes(), 1, 512L * 1024 * 1024);
    }

    /// <summary>
    /// Larger than Kestrel's default request body limit (30,000,000 bytes), which the upload endpoint lifts: streamed
    /// through the gate to disk, without Content-Length, and stored whole.
    /// </summary>
    [Fact]
    public async Task Upload_larger_than_kestrels_default_body_limit_is_accepted_and_stored_whole()
    {
        using var host = new SocketGateHost();
        byte[] image = new byte[40 * 1024 * 1024];
        image[^1] = 0x5A;

        using HttpResponseMessage response = await host.Client.SendAsync(GateScenarios.Put("large.raw", image, "raw", chunked: true));

        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        Assert.Equal(image.Length, new FileInfo(Path.Combine(host.ImageRoot, "large.raw")).Length);
        Assert.Empty(Directory.EnumerateFileSystemEntries(host.IncomingRoot));
    }

    /// <summary>A PUT written by hand, so that a client can lie about its length or vanish mid-body.</summary>
    private static async Task<string> RawPutAsync(Uri address, string name, int announced, ReadOnlyMemory<byte> body, bool readResponse)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(address.Host, address.Port);
        NetworkStream stream = client.GetStream();
        string head = $"PUT /images/{name} HTTP/1.1\r\nHost: {address.Authority}\r\nContent-Type: application/octet-stream\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(body);
        await stream.FlushAsync();
        if (!readResponse)
        {
            // Reset rather than close politely, as a crashed client would.
            client.Client.LingerState = new LingerOption(true, 0);
            client.Close();
            return "gone";
        }

        using var reader = new StreamReader(stream, Encoding.ASCII);
        string? status = await reader.ReadLineAsync();
        return status?.Split(' ')[1] ?? "no answer";
    }
}
