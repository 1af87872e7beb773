using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Pipelines;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Trust;

/// <summary>A layer that is refused because it cannot be read still reports what it was read as, and why it stopped.</summary>
public sealed class UnreadLayerTests
{
    /// <summary>A qcow2 image qemu-img made, with a cluster size qemu refuses (cluster_bits 40, offset 20).</summary>
    private static void MakeUnparsable(ScratchDirectory dir, string name)
    {
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", name, "1M");
        byte[] bytes = File.ReadAllBytes(dir[name]);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(20), 40);
        File.WriteAllBytes(dir[name], bytes);
    }

    [QemuImgFact]
    public async Task A_top_that_fails_to_parse_reports_its_format_and_how_it_was_known_in_every_shape()
    {
        using var dir = new ScratchDirectory();
        MakeUnparsable(dir, "bad.qcow2");

        // The oracle refuses it too.
        ProcessResult info = ProcessRunner.Run("qemu-img", ["info", "bad.qcow2"], dir.Path);
        Assert.NotEqual(0, info.ExitCode);

        // The check JSON of the file, probed and declared.
        foreach ((string[] format, string source) in new[] { (Array.Empty<string>(), "probed"), (new[] { "-f", "qcow2" }, "declared") })
        {
            (int exit, string json, string error) = CliRunner.Run(dir.Path, ["check", .. format, "--output", "json", "bad.qcow2"]);
            Assert.True(exit == 1, json + error);
            JsonNode report = JsonNode.Parse(json)!;
            JsonNode layer = Assert.Single(report["layers"]!.AsArray())!;
            Assert.Equal(("qcow2", source, "rejected", "malformed-header"), ((string?)layer["format"], (string?)layer["format-source"], (string?)layer["decision"], (string?)layer["reason"]));
            Assert.Contains("cluster size", (string?)layer["error"], StringComparison.OrdinalIgnoreCase);
        }

        // The upload: its JSON (the embedded report) and its problem details.
        UploadInspection upload = await new ImageUploadGate().InspectAsync(PipeReader.Create(new MemoryStream(File.ReadAllBytes(dir["bad.qcow2"]))), "bad.qcow2");
        Assert.False(upload.IsAccepted);
        Assert.Equal((ImageFormat.Qcow2, FormatSource.Probed), (upload.Report.Chain.UnreadLayer!.Format, upload.Report.Chain.UnreadLayer.FormatSource));
        JsonNode inspection = Parse(stream => UploadInspectionJson.Write(stream, upload));
        JsonNode uploadLayer = Assert.Single(inspection["report"]!["layers"]!.AsArray())!;
        Assert.Equal(("qcow2", "probed", "rejected"), ((string?)uploadLayer["format"], (string?)uploadLayer["format-source"], (string?)uploadLayer["decision"]));
        JsonNode problem = Parse(stream => UploadProblemDetails.Write(stream, upload));
        Assert.Equal(("qcow2", "probed", "malformed-header"), ((string?)problem["format"], (string?)problem["format-source"], (string?)problem["reason"]));
    }

    [QemuImgFact]
    public async Task A_backing_file_that_fails_to_parse_is_the_last_layer_reported_with_its_recorded_format()
    {
        using var dir = new ScratchDirectory();
        MakeUnparsable(dir, "base.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-u", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2", "1M");

        TrustReport report = await new ImageChainResolver().CheckAsync(dir["top.qcow2"], ImageFormat.Qcow2);

        Assert.False(report.IsSafe);
        Assert.Single(report.Chain.Layers);
        UnreadLayer unread = report.Chain.UnreadLayer!;
        Assert.Equal((dir["base.qcow2"], ImageFormat.Qcow2, FormatSource.Recorded), (unread.FileName, unread.Format, unread.FormatSource));
        JsonNode json = Parse(stream => TrustReportJson.Write(stream, report));
        Assert.Equal(2, json["layers"]!.AsArray().Count);
        Assert.Equal(("recorded", "rejected"), ((string?)json["layers"]![1]!["format-source"], (string?)json["layers"]![1]!["decision"]));

        // A chain that reads to its end has none.
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "good.qcow2", "1M");
        Assert.Null((await new ImageChainResolver().CheckAsync(dir["good.qcow2"], ImageFormat.Qcow2)).Chain.UnreadLayer);
    }

    private static JsonNode Parse(Action<Stream> write)
    {
        using var stream = new MemoryStream();
        write(stream);
        return JsonNode.Parse(stream.ToArray())!;
    }
}
