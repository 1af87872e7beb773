using System;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Interop;

/// <summary>
/// Names fit for clients: with an <see cref="ImageNameMapping"/>, every place a writer puts a server path — a layer's
/// <c>filename</c>, a reference's <c>name</c>, findings, <c>error</c>, <c>remediation</c>, the problem's
/// <c>detail</c> — shows it relative to the store or as the caller maps it; without one, nothing changes.
/// </summary>
public sealed class ImageNameMappingTests
{
    [QemuImgFact]
    public async Task Every_path_of_a_report_is_shown_relative_to_the_store()
    {
        using var dir = new ScratchDirectory();
        string store = dir["store"];
        Directory.CreateDirectory(store);
        QemuImg.Run(store, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b", Path.Combine(store, "base.raw"), "-F", "raw", "top.qcow2", "1M");
        Store.ImageStoreScannerTests.ClearV2BackingFormat(Path.Combine(store, "top.qcow2"));
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-u", "-b", "cut.qcow2", "-F", "qcow2", "over-cut.qcow2", "1M");
        File.WriteAllBytes(Path.Combine(store, "cut.qcow2"), File.ReadAllBytes(Path.Combine(store, "top.qcow2"))[..40]);
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = new TrustPolicy { TrustedRoots = [store] } });

        // A probed raw base under a top that names it by its absolute path: remediation, references, filenames.
        TrustReport fixable = await resolver.CheckAsync(Path.Combine(store, "top.qcow2"));
        Assert.Contains(store, Write(fixable, null), StringComparison.Ordinal);
        Assert.NotEmpty(fixable.Remediation);
        JsonNode json = JsonNode.Parse(Write(fixable, ImageNameMapping.RelativeTo(store)))!;
        Assert.Equal(["top.qcow2", "base.raw"], json["layers"]!.AsArray().Select(l => (string?)l!["filename"]));
        Assert.Equal("base.raw", (string?)json["layers"]![0]!["references"]![0]!["name"]);
        Assert.Equal("qemu-img rebase -f qcow2 -F raw -b base.raw -u top.qcow2", (string?)json["remediation"]![0]);

        // A backing file that cannot be read: the unread entry's filename and error, and the finding.
        TrustReport unread = await resolver.CheckAsync(Path.Combine(store, "over-cut.qcow2"), ImageFormat.Qcow2);
        string text = Write(unread, ImageNameMapping.RelativeTo(store));
        Assert.Contains(store, Write(unread, null), StringComparison.Ordinal);
        Assert.DoesNotContain(store, text, StringComparison.Ordinal);
        JsonNode cut = JsonNode.Parse(text)!["layers"]![1]!;
        Assert.Equal("cut.qcow2", (string?)cut["filename"]);
        Assert.Contains("'cut.qcow2'", (string?)cut["error"], StringComparison.Ordinal);

        // A caller's mapping: every path through it, the same report.
        var ids = new ImageNameMapping(path => "image:" + Path.GetFileNameWithoutExtension(path));
        JsonNode mapped = JsonNode.Parse(Write(fixable, ids))!;
        Assert.Equal(["image:top", "image:base"], mapped["layers"]!.AsArray().Select(l => (string?)l!["filename"]));
        Assert.Equal("qemu-img rebase -f qcow2 -F raw -b image:base -u image:top", (string?)mapped["remediation"]![0]);
        Assert.Equal("cut.qcow2: no such thing", ids.MapMessage("cut.qcow2: no such thing", fixable));
    }

    [QemuImgFact]
    public async Task An_upload_and_its_problem_details_show_no_server_path()
    {
        using var dir = new ScratchDirectory();
        string store = dir["store"];
        Directory.CreateDirectory(store);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "gone.raw", "-F", "raw", "upload.qcow2", "1M");
        var gate = new ImageUploadGate(new UploadInspectionOptions { Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [store] } });
        UploadInspection inspection;
        await using (FileStream upload = File.OpenRead(dir["upload.qcow2"]))
        {
            inspection = await gate.InspectAsync(PipeReader.Create(upload), Path.Combine(store, "new.qcow2"), ImageFormat.Qcow2);
        }

        Assert.False(inspection.IsAccepted);
        ImageNameMapping names = ImageNameMapping.RelativeTo(store);
        var plain = new MemoryStream();
        UploadProblemDetails.Write(plain, inspection, "/images/new.qcow2");
        Assert.Contains(store, Encoding.UTF8.GetString(plain.ToArray()), StringComparison.Ordinal);

        var problem = new MemoryStream();
        await UploadProblemDetails.WriteAsync(problem, inspection, "/images/new.qcow2", names);
        var body = new MemoryStream();
        await UploadInspectionJson.WriteAsync(body, inspection, names);
        foreach (string written in new[] { Encoding.UTF8.GetString(problem.ToArray()), Encoding.UTF8.GetString(body.ToArray()) })
        {
            Assert.DoesNotContain(store, written, StringComparison.Ordinal);
            Assert.Contains("'gone.raw'", written, StringComparison.Ordinal);
        }

        Assert.Equal("new.qcow2", (string?)JsonNode.Parse(body.ToArray())!["report"]!["layers"]![0]!["filename"]);
    }

    [Fact]
    public void Only_whole_paths_are_mapped_and_urls_are_kept()
    {
        ImageNameMapping names = ImageNameMapping.RelativeTo("/srv/images/");
        Assert.Equal("a/b.qcow2", names.Map("/srv/images/a/b.qcow2"));
        Assert.Equal("../other/c.raw", names.Map("/srv/other/c.raw"));
        Assert.Equal(".", names.Map("/srv/images"));
        Assert.Equal("https://h/srv/images/x", names.Map("https://h/srv/images/x"));
        Assert.Equal("relative.raw", names.Map("relative.raw"));
        Assert.Throws<ArgumentException>(() => ImageNameMapping.RelativeTo("/"));

        // In words, a spelling the report does not hold as a name still loses the store's prefix; a sibling does not.
        TrustReport empty = new ImageChainResolver().Unopened(ChainEnding.Missing, FindingCodes.UnreachableImage, "x") is { } chain ? Judge(chain) : null!;
        Assert.Equal("'x/y' in '.', not '/srv/images.state/z'", names.MapMessage("'/srv/images/x/y' in '/srv/images', not '/srv/images.state/z'", empty));
    }

    private static TrustReport Judge(ImageChain chain) => TrustJudge.Judge(chain);

    private static string Write(TrustReport report, ImageNameMapping? names)
    {
        var stream = new MemoryStream();
        TrustReportJson.Write(stream, report, names);
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
