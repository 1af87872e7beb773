using System;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Interop;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Tests.Properties;
using BackingChain.Trust;

namespace BackingChain.Tests.Interop;

public sealed class UploadInspectionJsonTests
{
    private static readonly TrustReason[] Acceptances =
        [TrustReason.FormatDeclared, TrustReason.FormatRecorded, TrustReason.ProbedRaw, TrustReason.ProbedWithoutReferences, TrustReason.ProbedWithTrustedReferences];

    [Fact]
    public async Task Write_accepted_overlay_has_stable_kebab_case_names_and_the_report()
    {
        using var store = new ScratchDirectory();
        File.WriteAllBytes(store["base.raw"], new byte[4096]);
        var gate = new ImageUploadGate(new UploadInspectionOptions
        {
            Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [store.Path] },
        });
        byte[] overlay = HostileBytesProperties.Qcow2("base.raw", "raw");
        UploadInspection inspection = await gate.InspectAsync(PipeReader.Create(new MemoryStream(overlay)), store["top.qcow2"], ImageFormat.Qcow2);

        JsonNode json = Parse(stream => UploadInspectionJson.Write(stream, inspection));

        Assert.Equal("accepted", (string?)json["verdict"]);
        Assert.Equal("format-declared", (string?)json["reason"]);
        Assert.Equal("qcow2", (string?)json["format"]);
        Assert.Equal("declared", (string?)json["format-source"]);
        Assert.Equal("qcow2", (string?)json["probed-format"]);
        Assert.Equal(overlay.Length, (long?)json["length"]);
        Assert.Equal(1024 * 1024, (long?)json["virtual-size"]);
        Assert.Null(json["sha256"]);
        JsonNode reference = Assert.Single(json["references"]!.AsArray())!;
        Assert.Equal("backing-file", (string?)reference["role"]);
        Assert.Equal("base.raw", (string?)reference["name"]);
        Assert.Equal("raw", (string?)reference["backing-format"]);
        Assert.Equal("safe", (string?)json["report"]!["verdict"]);
        Assert.Equal(2, json["report"]!["layers"]!.AsArray().Count);
    }

    [Fact]
    public async Task Problem_details_rejected_upload_follows_RFC_9457_with_findings()
    {
        UploadInspection inspection = await new ImageUploadGate().InspectAsync(
            PipeReader.Create(new MemoryStream(HostileBytesProperties.Qcow2("/etc/shadow", null))), "hostile.img");

        JsonNode json = Parse(stream => UploadProblemDetails.Write(stream, inspection, "/images/hostile.img"));

        Assert.Equal("tag:backingchain.core,2026:problem:probed-with-untrusted-references", (string?)json["type"]);
        Assert.Equal(UploadProblemDetails.GetTitle(TrustReason.ProbedWithUntrustedReferences), (string?)json["title"]);
        Assert.Equal(422, (int?)json["status"]);
        Assert.Equal("/images/hostile.img", (string?)json["instance"]);
        Assert.Equal("probed-with-untrusted-references", (string?)json["reason"]);
        Assert.Equal(inspection.Findings[0].Message, (string?)json["detail"]);
        JsonArray findings = json["findings"]!.AsArray();
        Assert.Equal(inspection.Findings.Length, findings.Count);
        Assert.Equal([.. inspection.Findings.Select(f => f.Code)], findings.Select(f => (string?)f!["code"]));
        Assert.Contains(findings, f => (string?)f!["code"] == "probed-format-with-references" && ((string?)f["message"])!.Contains("/etc/shadow", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Problem_details_accepted_upload_is_not_a_problem()
    {
        UploadInspection inspection = await new ImageUploadGate().InspectAsync(PipeReader.Create(new MemoryStream(new byte[512])));

        Assert.Throws<ArgumentException>(() => UploadProblemDetails.Write(Stream.Null, inspection));
    }

    [Fact]
    public void Problem_types_every_rejecting_reason_has_its_own_type_and_title()
    {
        TrustReason[] rejections = [.. Enum.GetValues<TrustReason>().Except(Acceptances)];

        string[] types = [.. rejections.Select(UploadProblemDetails.GetTypeUri)];
        string[] titles = [.. rejections.Select(UploadProblemDetails.GetTitle)];

        Assert.Equal(rejections.Length, types.Distinct().Count());
        Assert.Equal(rejections.Length, titles.Distinct().Count());
        Assert.DoesNotContain(UploadProblemDetails.GetTitle(TrustReason.FormatDeclared), titles);
        Assert.All(types, type => Assert.True(Uri.IsWellFormedUriString(type, UriKind.Absolute), type));
        Assert.Equal("tag:backingchain.core,2026:problem:empty-upload", UploadProblemDetails.GetTypeUri(TrustReason.EmptyUpload));
    }

    private static JsonNode Parse(Action<Stream> write)
    {
        using var stream = new MemoryStream();
        write(stream);
        return JsonNode.Parse(stream.ToArray(), documentOptions: new JsonDocumentOptions())!;
    }
}
