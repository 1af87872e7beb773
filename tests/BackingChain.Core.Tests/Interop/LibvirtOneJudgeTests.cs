using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Interop;

/// <summary>
/// A libvirt disk is judged by the one judge: its spelled-out layers and every file they name go through the same
/// gate as a chain given to <see cref="ImageChainResolver.Check"/>, and the verdict is the same, layer by layer.
/// Images are made by qemu-img; every document is checked against libvirt's schema first.
/// </summary>
public sealed class LibvirtOneJudgeTests
{
    public enum Shape
    {
        /// <summary>root/top.qcow2 keeps its data in outside/data.raw; the XML spells out the top and ends the chain.</summary>
        DataFileOutsideRoot,

        /// <summary>root/top.qcow2 keeps its data in root/data.raw.</summary>
        DataFileInsideRoot,

        /// <summary>root/top.qcow2 over outside/base.raw, both spelled out, ended.</summary>
        SpelledOutBackingOutsideRoot,

        /// <summary>root/top.qcow2 over root/base.qcow2 (data file outside), both spelled out, ended.</summary>
        SpelledOutBackingWithDataFileOutside,

        /// <summary>root/top.qcow2 over root/base.qcow2 (data file outside); only the top spelled out, so libvirt walks on.</summary>
        OpenEndOverBackingWithDataFileOutside,

        /// <summary>root/top.qcow (no backing format recorded) over root/base.qcow2 over root/base.raw; only the top spelled out.</summary>
        OpenEndOverProbedLayer,
    }

    public enum Posture
    {
        Host,
        UntrustedWithRoot,
    }

    public static TheoryData<Shape, Posture> Scenarios()
    {
        var data = new TheoryData<Shape, Posture>();
        foreach (Shape shape in Enum.GetValues<Shape>())
        {
            foreach (Posture posture in Enum.GetValues<Posture>())
            {
                data.Add(shape, posture);
            }
        }

        return data;
    }

    [LibvirtSchemaTheory]
    [MemberData(nameof(Scenarios))]
    public async Task Disk_verdict_equals_the_resolvers_verdict_on_the_same_chain(Shape shape, Posture posture)
    {
        using var dir = new ScratchDirectory();
        (string document, string top, ImageFormat format, bool spelledOutBelow) = Make(dir, shape);
        TrustPolicy policy = posture == Posture.Host
            ? new TrustPolicy { TrustedRoots = [dir["root"]] }
            : new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir["root"]] };
        var domainSpy = new SpyFileProvider();
        var checkSpy = new SpyFileProvider();

        LibvirtDiskChain disk = await ReadAsync(dir, document, new ImageChainResolverOptions { Policy = policy, SourceProviders = [domainSpy] });
        TrustReport check = new ImageChainResolver(new ImageChainResolverOptions { Policy = policy, SourceProviders = [checkSpy] }).Check(top, format);

        // Spelled-out layers below the top are declared by the XML where the resolver follows a recorded format:
        // that is the one difference allowed, and only in an accepted layer's reason.
        Assert.Equal(Verdict(check, spelledOutBelow), Verdict(disk.Report, spelledOutBelow));
        Assert.Equal(check.IsSafe, disk.Report.IsSafe);

        // The disk is safe only when, besides, libvirt starts it with that chain (a probed image naming a backing
        // file, or a data file, makes libvirt 9.0 refuse it or start another chain).
        Assert.Equal(disk.Report.IsSafe && disk.Prediction.Outcome is LibvirtOutcome.Starts or LibvirtOutcome.NotPredicted, disk.IsSafe);
        Assert.Equal(disk.IsSafe, disk.UnsafeReason is null);
        Assert.Equal(checkSpy.Opened.Order(StringComparer.Ordinal), domainSpy.Opened.Order(StringComparer.Ordinal));
    }

    [LibvirtSchemaFact]
    public async Task Explicit_layer_naming_a_data_file_outside_the_roots_is_unsafe_for_an_untrusted_image_and_the_file_is_never_opened()
    {
        using var dir = new ScratchDirectory();
        (string document, _, _, _) = Make(dir, Shape.SpelledOutBackingWithDataFileOutside);
        var spy = new SpyFileProvider();
        var policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [dir["root"]] };

        LibvirtDiskChain disk = await ReadAsync(dir, document, new ImageChainResolverOptions { Policy = policy, SourceProviders = [spy] });
        LibvirtDiskChain host = await ReadAsync(dir, document, new ImageChainResolverOptions { Policy = new TrustPolicy { TrustedRoots = [dir["root"]] } });

        Assert.False(disk.IsSafe);
        Assert.Equal(TrustReason.ReferenceNotTrusted, disk.Report.Reason);
        LayerVerdict base_ = disk.Report.Layers[1];
        Assert.Equal(dir["root/base.qcow2"], base_.FileName);
        Assert.Equal(FormatSource.Declared, base_.FormatSource);
        ReferenceDecision data = Assert.Single(base_.References);
        Assert.Equal(ReferenceRole.ExternalDataFile, data.Reference.Role);
        Assert.Equal(ReferenceOutcome.Refused, data.Outcome);
        Assert.Contains("reference-not-trusted", disk.UnsafeReason, StringComparison.Ordinal);
        Assert.DoesNotContain(dir["outside/data.raw"], spy.Opened);
        Assert.Empty(disk.Drift);

        // The host posture takes the XML's declared format as the administrator's word, as for any declared image.
        Assert.True(host.IsSafe, host.UnsafeReason);
    }

    [LibvirtSchemaFact]
    public async Task Network_layer_is_a_reference_at_the_gate_refused_without_a_trusted_prefix_and_unreachable_without_a_source()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["root"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "https://images.example/base.raw", "-F", "raw", "root/top.qcow2", "1M");
        string document = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["root/top.qcow2"]}'/>"
            + "<backingStore type='network'><format type='raw'/><source protocol='https' name='/base.raw'><host name='images.example' port='443'/></source><backingStore/></backingStore>"
            + "<target dev='vda' bus='virtio'/></disk>";

        LibvirtDiskChain noSource = await ReadAsync(dir, document, new ImageChainResolverOptions());
        using var client = new System.Net.Http.HttpClient();
        LibvirtDiskChain untrustedUrl = await ReadAsync(dir, document, new ImageChainResolverOptions
        {
            SourceProviders = [FileImageSourceProvider(), new BackingChain.Sources.HttpImageSourceProvider(client)],
        });

        ReferenceDecision unreachable = Assert.Single(noSource.Report.Layers[0].References);
        Assert.Equal(ReferenceOutcome.NotFollowed, unreachable.Outcome);
        Assert.Equal(TrustReason.ReferenceUnreachable, noSource.Report.Layers[0].Reason);
        Assert.False(noSource.IsSafe);

        // A URL the policy does not trust is refused before anything is sent.
        ReferenceDecision refused = Assert.Single(untrustedUrl.Report.Layers[0].References);
        Assert.Equal(ReferenceOutcome.Refused, refused.Outcome);
        Assert.Equal("https://images.example:443/base.raw", refused.Reference.FullName);
        Assert.False(untrustedUrl.IsSafe);
        Assert.Empty(untrustedUrl.Drift);
    }

    private static BackingChain.Sources.IImageSourceProvider FileImageSourceProvider() => BackingChain.Sources.FileImageSourceProvider.Instance;

    /// <summary>The verdict as data: per layer its name, decision, reason and the gate's decisions.</summary>
    private static string Verdict(TrustReport report, bool declaredBelow) =>
        $"{(report.IsSafe ? "safe" : "unsafe")} {report.Reason} ending={report.Chain.Ending}\n" + string.Join("\n", report.Layers.Select(l =>
            $"{l.FileName} {l.Format.GetQemuName()} {l.Decision} {(declaredBelow && l.Reason == TrustReason.FormatRecorded ? TrustReason.FormatDeclared : l.Reason)} "
            + $"[{string.Join(", ", l.References.Select(d => $"{d.Reference.Role} {d.Reference.FullName} {d.Outcome} {d.Basis}"))}]"));

    private static (string Document, string Top, ImageFormat Format, bool SpelledOutBelow) Make(ScratchDirectory dir, Shape shape)
    {
        Directory.CreateDirectory(dir["root"]);
        Directory.CreateDirectory(dir["outside"]);
        string Run(params string[] arguments) => QemuImg.Run(dir.Path, arguments);
        switch (shape)
        {
            case Shape.DataFileOutsideRoot:
                Run("create", "-q", "-f", "qcow2", "-o", $"data_file={dir["outside/data.raw"]}", "root/top.qcow2", "1M");
                return (Disk(("qcow2", dir["root/top.qcow2"])), dir["root/top.qcow2"], ImageFormat.Qcow2, false);
            case Shape.DataFileInsideRoot:
                Run("create", "-q", "-f", "qcow2", "-o", $"data_file={dir["root/data.raw"]}", "root/top.qcow2", "1M");
                return (Disk(("qcow2", dir["root/top.qcow2"])), dir["root/top.qcow2"], ImageFormat.Qcow2, false);
            case Shape.SpelledOutBackingOutsideRoot:
                Run("create", "-q", "-f", "raw", "outside/base.raw", "1M");
                Run("create", "-q", "-f", "qcow2", "-b", dir["outside/base.raw"], "-F", "raw", "root/top.qcow2");
                return (Disk(("qcow2", dir["root/top.qcow2"]), ("raw", dir["outside/base.raw"])), dir["root/top.qcow2"], ImageFormat.Qcow2, true);
            case Shape.SpelledOutBackingWithDataFileOutside:
            case Shape.OpenEndOverBackingWithDataFileOutside:
                Run("create", "-q", "-f", "qcow2", "-o", $"data_file={dir["outside/data.raw"]}", "root/base.qcow2", "1M");
                Run("create", "-q", "-f", "qcow2", "-b", dir["root/base.qcow2"], "-F", "qcow2", "root/top.qcow2");
                return shape == Shape.SpelledOutBackingWithDataFileOutside
                    ? (Disk(("qcow2", dir["root/top.qcow2"]), ("qcow2", dir["root/base.qcow2"])), dir["root/top.qcow2"], ImageFormat.Qcow2, true)
                    : (OpenDisk("qcow2", dir["root/top.qcow2"]), dir["root/top.qcow2"], ImageFormat.Qcow2, false);
            default:
                Run("create", "-q", "-f", "raw", "root/base.raw", "1M");
                Run("create", "-q", "-f", "qcow2", "-b", dir["root/base.raw"], "-F", "raw", "root/base.qcow2");
                Run("create", "-q", "-f", "qcow", "-b", dir["root/base.qcow2"], "-F", "qcow2", "root/top.qcow");
                return (OpenDisk("qcow", dir["root/top.qcow"]), dir["root/top.qcow"], ImageFormat.Qcow, false);
        }
    }

    /// <summary>A disk that spells out every layer given, top first, and ends the chain.</summary>
    private static string Disk(params (string Format, string Path)[] layers)
    {
        var text = new StringBuilder($"<disk type='file' device='disk'><driver name='qemu' type='{layers[0].Format}'/><source file='{layers[0].Path}'/>");
        foreach ((string format, string path) in layers.Skip(1))
        {
            text.Append($"<backingStore type='file'><format type='{format}'/><source file='{path}'/>");
        }

        text.Append("<backingStore/>").Append(string.Concat(Enumerable.Repeat("</backingStore>", layers.Length - 1))).Append("<target dev='vda' bus='virtio'/></disk>");
        return text.ToString();
    }

    /// <summary>A disk that gives only its source: libvirt walks on from it.</summary>
    private static string OpenDisk(string format, string path) =>
        $"<disk type='file' device='disk'><driver name='qemu' type='{format}'/><source file='{path}'/><target dev='vda' bus='virtio'/></disk>";

    private static async Task<LibvirtDiskChain> ReadAsync(ScratchDirectory dir, string disk, ImageChainResolverOptions options)
    {
        (int exit, string output) = VirtXmlValidate.ValidateDisk(dir.Path, disk);
        Assert.True(exit == 0, output + "\n" + disk);
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(disk));
        ImmutableArray<LibvirtDiskChain> disks = await LibvirtDomainReader.ReadAsync(stream, options, default);
        return Assert.Single(disks);
    }
}
