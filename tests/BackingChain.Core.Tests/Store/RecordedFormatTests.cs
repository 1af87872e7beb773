using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Store;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Store;

/// <summary>
/// A store whose service recorded each image's format (<see cref="IImageFormatCatalog"/>): a tenant's image accepted
/// as raw whose content is a qcow2 header naming another tenant's image names nothing when it is read by its recorded
/// format — in a scan, a check by path, and where another image or an upload reaches it through a backing name (read
/// as qemu reads it, and said). qemu-img is the oracle: <c>qemu-img info -f raw</c> shows no backing file.
/// </summary>
public sealed class RecordedFormatTests
{
    [QemuImgTheory]
    [InlineData(TrustPosture.Host)]
    [InlineData(TrustPosture.UntrustedImage)]
    public async Task A_declared_raw_image_holding_a_qcow2_header_names_nothing_in_the_store(TrustPosture posture)
    {
        using var dir = new ScratchDirectory();
        (string store, Catalog catalog) = BuildStore(dir);
        var policy = new TrustPolicy { Posture = posture };

        StoreGraph recorded = await new ImageStoreScanner(new ImageStoreScannerOptions { Policy = policy, FormatCatalog = catalog }).ScanGraphAsync(store);
        StoreGraph probed = await new ImageStoreScanner(new ImageStoreScannerOptions { Policy = policy }).ScanGraphAsync(store);

        // The oracle: read as raw, qemu-img sees no backing file; probed, it sees the header's.
        Assert.Null(QemuImg.Info(store, "tenant.raw", format: "raw")["backing-filename"]);
        Assert.Equal("trusted/victim.qcow2", (string?)QemuImg.Info(store, "tenant.raw")["backing-filename"]);

        StoreImage tenant = Image(recorded, store, "tenant.raw");
        ChainLayer layer = Assert.Single(tenant.Report.Chain.Layers);
        Assert.Equal((ImageFormat.Raw, FormatSource.Declared), (layer.Format, layer.FormatSource));
        Assert.Empty(layer.References);
        Assert.Null(tenant.Backing);
        Assert.True(tenant.Report.IsSafe);
        Assert.Empty(tenant.Report.Findings);
        Assert.DoesNotContain(tenant, recorded.GetDependents(Image(recorded, store, "trusted/victim.qcow2")));
        Assert.DoesNotContain(tenant, recorded.Unsafe);

        // Unrecorded, it is probed as today: a qcow2 using the victim, refused (the victim is not trusted).
        StoreImage guessed = Image(probed, store, "tenant.raw");
        Assert.Equal((ImageFormat.Qcow2, FormatSource.Probed), (guessed.Report.Chain.Layers[0].Format, guessed.Report.Chain.Layers[0].FormatSource));
        Assert.Contains(guessed, probed.GetDependents(Image(probed, store, "trusted/victim.qcow2")));
        Assert.Equal("trusted/victim.qcow2", guessed.Backing?.StoredName);
        Assert.Contains(guessed, probed.Unsafe);
    }

    [QemuImgTheory]
    [InlineData(TrustPosture.Host)]
    [InlineData(TrustPosture.UntrustedImage)]
    public async Task A_recorded_image_with_an_unrecorded_backing_format_is_judged_as_qemu_reads_it(TrustPosture posture)
    {
        using var dir = new ScratchDirectory();
        (string store, Catalog catalog) = BuildStore(dir);
        var policy = new TrustPolicy { Posture = posture, TrustedRoots = [store] };

        StoreGraph recorded = await new ImageStoreScanner(new ImageStoreScannerOptions { Policy = policy, FormatCatalog = catalog }).ScanGraphAsync(store);
        StoreGraph probed = await new ImageStoreScanner(new ImageStoreScannerOptions { Policy = policy }).ScanGraphAsync(store);

        // qemu probes the backing file the overlay does not record a format for, whatever the service knows: the
        // verdict, its reason and the layers are today's; the catalog adds a finding and the fix that records raw.
        StoreImage overlay = Image(recorded, store, "overlay.qcow2");
        StoreImage before = Image(probed, store, "overlay.qcow2");
        Assert.Equal(Verdict(before.Report, from: 1), Verdict(overlay.Report, from: 1));
        Assert.Equal((before.Report.IsSafe, ImageFormat.Qcow2), (overlay.Report.IsSafe, overlay.Report.Chain.Layers[0].Format));
        Assert.Equal(FormatSource.Declared, overlay.Report.Chain.Layers[0].FormatSource);
        Assert.Equal(ImageFormat.Qcow2, overlay.Report.Chain.Layers[1].Format);
        Assert.Equal(FormatSource.Probed, overlay.Report.Chain.Layers[1].FormatSource);
        Assert.Contains(overlay, recorded.UnrecordedBackingFormat);
        Assert.Same(overlay, Assert.Single(recorded.GetDependents(Image(recorded, store, "tenant.raw"))));
        ChainFinding mismatch = Assert.Single(overlay.Report.Findings, f => f.Code == FindingCodes.FormatMismatch);
        Assert.Equal(1, mismatch.LayerIndex);
        Assert.Contains("recorded in the store as raw", mismatch.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(before.Report.Findings, f => f.Code == FindingCodes.FormatMismatch);

        // The fix names the recorded format, never the forged one; applied by qemu-img, qemu-img then reads the chain
        // as the service recorded it: the tenant's image raw, and nothing below it.
        string fix = Assert.Single(overlay.Report.Remediation);
        Assert.DoesNotContain(before.Report.Remediation, line => line.Contains("-F raw", StringComparison.Ordinal));
        string[] words = fix.Split(' ');
        Assert.Equal("qemu-img", words[0]);
        QemuImg.Run(store, words[1..]);
        JsonArray chain = QemuImg.Info(store, "overlay.qcow2", backingChain: true).AsArray();
        Assert.Equal(
            [("overlay.qcow2", "qcow2"), ("tenant.raw", "raw")],
            chain.Select(l => (Path.GetFileName((string)l!["filename"]!), (string)l["format"]!)));
    }

    [QemuImgFact]
    public async Task A_resolver_reads_a_stored_top_by_its_recorded_format_and_a_declared_one_wins()
    {
        using var dir = new ScratchDirectory();
        (string store, Catalog catalog) = BuildStore(dir);
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = new TrustPolicy { TrustedRoots = [store] }, FormatCatalog = catalog });

        TrustReport recorded = await resolver.CheckAsync(Path.Combine(store, "tenant.raw"));
        Assert.Equal((ImageFormat.Raw, FormatSource.Declared), (recorded.Chain.Layers[0].Format, recorded.Chain.Layers[0].FormatSource));
        Assert.Single(recorded.Chain.Layers);

        // A relative spelling is the same file to the catalog.
        string relative = Path.GetRelativePath(Directory.GetCurrentDirectory(), Path.Combine(store, "tenant.raw"));
        Assert.Equal(FormatSource.Declared, (await resolver.CheckAsync(relative)).Chain.Layers[0].FormatSource);

        // The caller's declared format is the caller's word, and an image the catalog does not know is probed.
        TrustReport declared = await resolver.CheckAsync(Path.Combine(store, "tenant.raw"), ImageFormat.Qcow2);
        Assert.Equal(2, declared.Chain.Layers.Length);
        catalog.Formats.Remove(Path.Combine(store, "tenant.raw"));
        Assert.Equal(FormatSource.Probed, (await resolver.CheckAsync(Path.Combine(store, "tenant.raw"))).Chain.Layers[0].FormatSource);
    }

    [QemuImgTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_upload_naming_a_recorded_image_is_judged_as_today_and_told_where_the_formats_disagree(bool recordsQcow2)
    {
        using var dir = new ScratchDirectory();
        (string store, Catalog catalog) = BuildStore(dir);
        string upload = dir["upload.qcow2"];
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b", Path.Combine(store, "tenant.raw"), "-F", "qcow2", upload, "1M");
        if (!recordsQcow2)
        {
            ImageStoreScannerTests.ClearV2BackingFormat(upload);
        }

        var policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [store] };
        UploadInspection with = await Inspect(new UploadInspectionOptions { Policy = policy, FormatCatalog = catalog }, upload);
        UploadInspection without = await Inspect(new UploadInspectionOptions { Policy = policy }, upload);

        Assert.Equal(Verdict(without.Report), Verdict(with.Report));
        ChainFinding mismatch = Assert.Single(with.Findings, f => f.Code == FindingCodes.FormatMismatch);
        Assert.Equal(1, mismatch.LayerIndex);
        Assert.Contains(recordsQcow2 ? "records its backing format as qcow2" : "is probed", mismatch.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(without.Findings, f => f.Code == FindingCodes.FormatMismatch);

        // The upload itself is never looked up: a catalog entry at its name changes nothing.
        catalog.Formats[upload] = ImageFormat.Raw;
        Assert.Equal(ImageFormat.Qcow2, (await Inspect(new UploadInspectionOptions { Policy = policy, FormatCatalog = catalog }, upload)).Format);
    }

    private static async Task<UploadInspection> Inspect(UploadInspectionOptions options, string path)
    {
        await using FileStream stream = File.OpenRead(path);
        return await new ImageUploadGate(options).InspectAsync(PipeReader.Create(stream), path);
    }

    private static StoreImage Image(StoreGraph graph, string store, string name) => graph.Images.Single(i => i.Path == Path.Combine(store, name));

    private static string Verdict(TrustReport report, int from = 0) => string.Join(
        "\n",
        [
            from == 0 ? $"{report.IsSafe} {report.Reason} {report.Chain.Ending}" : $"{report.IsSafe} {report.Chain.Ending}",
            .. report.Layers.Skip(from).Select(l => $"{l.FileName} {l.Format} {l.FormatSource} {l.Decision} {l.Reason} "
                + string.Join(",", l.References.Select(r => $"{r.Reference.StoredName}:{r.Outcome}:{r.Basis}"))),
        ]);

    /// <summary>
    /// <code>
    /// trusted/victim.qcow2   another tenant's image (recorded qcow2)
    /// tenant.raw             accepted as raw; its guest wrote a qcow2 header naming trusted/victim.qcow2
    /// overlay.qcow2          recorded qcow2, over tenant.raw without recording its format (qcow2 v2, extension cleared)
    /// </code>
    /// </summary>
    private static (string Store, Catalog Catalog) BuildStore(ScratchDirectory dir)
    {
        string store = dir["store"];
        Directory.CreateDirectory(Path.Combine(store, "trusted"));
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "trusted/victim.qcow2", "1M");
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-u", "-b", "trusted/victim.qcow2", "-F", "qcow2", "tenant.raw", "1M");
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b", "tenant.raw", "-F", "raw", "overlay.qcow2", "1M");
        ImageStoreScannerTests.ClearV2BackingFormat(Path.Combine(store, "overlay.qcow2"));
        var catalog = new Catalog();
        catalog.Formats[Path.Combine(store, "trusted/victim.qcow2")] = ImageFormat.Qcow2;
        catalog.Formats[Path.Combine(store, "tenant.raw")] = ImageFormat.Raw;
        catalog.Formats[Path.Combine(store, "overlay.qcow2")] = ImageFormat.Qcow2;
        return (store, catalog);
    }

    /// <summary>A service's record, in memory.</summary>
    private sealed class Catalog : IImageFormatCatalog
    {
        public Dictionary<string, ImageFormat> Formats { get; } = new(StringComparer.Ordinal);

        public bool TryGetFormat(string path, out ImageFormat format) => Formats.TryGetValue(path, out format);
    }
}
