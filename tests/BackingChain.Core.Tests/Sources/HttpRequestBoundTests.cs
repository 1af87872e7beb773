using System;
using System.Buffers.Binary;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Sources;

/// <summary>
/// What a layer read over http costs, counted in nginx's access log: a table or list qemu reads in one (or that its
/// curl driver serves from its read-ahead) costs a handful of range requests, whatever count the header gives,
/// and the layer still reads as qemu-img reads it over the same URL.
/// </summary>
public sealed class HttpRequestBoundTests
{
    // The open (1 byte), the head, the tail of a probed layer, and a few window refills.
    private const int MaxRequestsPerLayer = 16;

    private static HttpClient NewClient() => new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false }) { Timeout = TimeSpan.FromSeconds(30) };

    private static int Requests(Nginx nginx, string path)
    {
        // nginx writes a request's log line when it is done; the client has read every answer by now.
        return nginx.AccessLog().Split('\n').Count(l => l.Contains($"GET {path} ", StringComparison.Ordinal));
    }

    [NginxQemuFact]
    public void A_table_of_65536_snapshots_costs_a_handful_of_requests_and_reads_as_qemu_reads_it()
    {
        using var nginx = new Nginx();
        string images = nginx.Folder("images");
        QemuImg.Run(images, "create", "-q", "-f", "qcow2", "many.qcow2", "1M");

        // qemu's most (QCOW_MAX_SNAPSHOTS): entries of a 40-byte header, an id and a name, padded to 8 bytes, written
        // at 1 MiB (past everything qemu-img wrote). The table is about 3.5 MiB.
        const int Count = 65536;
        const long TableOffset = 0x100000;
        var table = new MemoryStream();
        for (int i = 0; i < Count; i++)
        {
            byte[] id = Encoding.ASCII.GetBytes((i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            byte[] name = Encoding.ASCII.GetBytes("s" + i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            byte[] entry = new byte[(40 + id.Length + name.Length + 7) & ~7];
            BinaryPrimitives.WriteUInt16BigEndian(entry.AsSpan(12), (ushort)id.Length);
            BinaryPrimitives.WriteUInt16BigEndian(entry.AsSpan(14), (ushort)name.Length);
            BinaryPrimitives.WriteUInt32BigEndian(entry.AsSpan(16), (uint)i);
            id.CopyTo(entry, 40);
            name.CopyTo(entry, 40 + id.Length);
            table.Write(entry);
        }

        using (var file = new FileStream(Path.Combine(images, "many.qcow2"), FileMode.Open, FileAccess.ReadWrite))
        {
            file.SetLength(TableOffset + table.Length);
            file.Position = TableOffset;
            table.WriteTo(file);
            byte[] fields = new byte[12];
            BinaryPrimitives.WriteUInt32BigEndian(fields, Count);
            BinaryPrimitives.WriteUInt64BigEndian(fields.AsSpan(4), (ulong)TableOffset);
            file.Position = 60; // nb_snapshots, then snapshots_offset
            file.Write(fields);
        }

        string url = nginx.Url("images/many.qcow2");
        JsonNode expected = QemuImg.Info(nginx.Root, url);
        Assert.Equal(Count, expected["snapshots"]!.AsArray().Count);
        int before = Requests(nginx, "/images/many.qcow2");

        (int exit, string stdout, string stderr) = CliRunner.Run(nginx.Root, "info", "--output", "json", url);
        Assert.True(exit == 0, stderr);
        int requests = Requests(nginx, "/images/many.qcow2") - before;
        var differences = JsonComparison.Differences(expected, JsonNode.Parse(stdout)!);
        Assert.True(differences.Count == 0, string.Join("\n", differences.Take(20)));
        Assert.True(requests <= MaxRequestsPerLayer, $"{requests} range requests for one layer");
    }

    [NginxQemuFact]
    public void Header_extensions_found_one_by_one_cost_a_handful_of_requests()
    {
        using var nginx = new Nginx();
        string images = nginx.Folder("images");
        QemuImg.Run(images, "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", "ext.qcow2", "4M");

        // Cluster 0 filled with empty extensions of a type no one knows (8 bytes each, about 260,000 of them) after
        // the ones qemu-img wrote, then the end marker: the parser finds each only after reading the one before.
        string path = Path.Combine(images, "ext.qcow2");
        byte[] image = File.ReadAllBytes(path);
        uint headerLength = BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(100));
        int offset = (int)headerLength;
        while (BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(offset)) != 0)
        {
            offset += 8 + (int)((BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(offset + 4)) + 7) & ~7u);
        }

        const int ClusterSize = 2 * 1024 * 1024;
        int extensions = 0;
        for (; offset + 16 <= ClusterSize; offset += 8, extensions++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(offset), 0x7a7a7a7a);
            BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(offset + 4), 0);
        }

        Array.Clear(image, offset, 8);
        File.WriteAllBytes(path, image);
        Assert.True(extensions > 200_000);

        string url = nginx.Url("images/ext.qcow2");
        JsonNode expected = QemuImg.Info(nginx.Root, url);
        int before = Requests(nginx, "/images/ext.qcow2");
        (int exit, string stdout, string stderr) = CliRunner.Run(nginx.Root, "info", "--output", "json", url);
        Assert.True(exit == 0, stderr);
        int requests = Requests(nginx, "/images/ext.qcow2") - before;
        var differences = JsonComparison.Differences(expected, JsonNode.Parse(stdout)!);
        Assert.True(differences.Count == 0, string.Join("\n", differences.Take(20)));
        Assert.True(requests <= MaxRequestsPerLayer, $"{requests} range requests for one layer");
    }

    [NginxQemuFact]
    public void Every_format_read_over_http_costs_a_bounded_number_of_requests_and_reads_as_qemu_reads_it()
    {
        using var nginx = new Nginx();
        string images = nginx.Folder("images");

        // Large virtual sizes, so that every table a reader walks (block maps, BATs, L1 tables, offsets) is large.
        (string Format, string Options, string Size)[] made =
        [
            ("raw", "", "1M"), ("qcow2", "", "100G"), ("qcow", "", "100G"), ("qed", "", "100G"), ("vdi", "", "100G"),
            ("vmdk", "", "100G"), ("vmdk", "subformat=streamOptimized", "100G"), ("vpc", "", "100G"), ("vhdx", "", "100G"),
            ("parallels", "", "100G"),
        ];
        var files = made.Select((m, i) =>
        {
            string file = $"{i}.{m.Format}";
            string[] options = m.Options.Length > 0 ? ["-o", m.Options] : [];
            QemuImg.Run(images, ["create", "-q", "-f", m.Format, .. options, file, m.Size]);
            return file;
        }).ToList();

        // cloop: 300,000 blocks, an offsets table of 2.4 MB read in pieces.
        File.WriteAllBytes(Path.Combine(images, "big.cloop"), ImageBytes.Cloop(65536, 300_000));
        files.Add("big.cloop");

        var failures = new System.Collections.Generic.List<string>();
        foreach (string file in files)
        {
            string url = nginx.Url("images/" + file);
            JsonNode expected = QemuImg.Info(nginx.Root, url);
            int before = Requests(nginx, "/images/" + file);
            (int exit, string stdout, string stderr) = CliRunner.Run(nginx.Root, "info", "--output", "json", url);
            int requests = Requests(nginx, "/images/" + file) - before;
            if (exit != 0)
            {
                failures.Add($"{file}: exit {exit}: {stderr}");
                continue;
            }

            var differences = JsonComparison.Differences(expected, JsonNode.Parse(stdout)!);
            if (differences.Count > 0)
            {
                failures.Add($"{file}: {string.Join("; ", differences.Take(5))}");
            }

            if (requests > MaxRequestsPerLayer)
            {
                failures.Add($"{file}: {requests} range requests");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
