using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Reflection;
using System.Text;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Sources;
using BackingChain.Store;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Chain;

/// <summary>
/// The walk's settings (<see cref="ImageChainResolverOptions"/>) are the one model every entry point's options are made
/// from: every one of them reaches the gate's, the scanner's and the domain reader's walks, and a setting added to the
/// resolver's options must be carried by the others.
/// </summary>
public sealed class WalkSettingsTests
{
    private static readonly ImageChainResolverOptions Walk = new()
    {
        Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = ["/srv/images"] },
        SourceProviders = [ImageSources.Memory([]), ImageSources.Files],
        MaxDepth = 7,
        Timeout = TimeSpan.FromSeconds(9),
    };

    [Fact]
    public void Every_setting_of_the_walk_is_carried_by_every_entry_points_options()
    {
        PropertyInfo[] walkSettings = typeof(ImageChainResolverOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance);
        var derived = new object[]
        {
            new ImageChainResolverOptions(Walk),
            new UploadInspectionOptions(Walk),
            new ImageStoreScannerOptions(Walk),
            new LibvirtDomainReader(Walk).Options,
        };

        foreach (object options in derived)
        {
            foreach (PropertyInfo setting in walkSettings)
            {
                // A setting the resolver's options gain and another entry point's options lack fails here, by name.
                PropertyInfo? same = options.GetType().GetProperty(setting.Name, BindingFlags.Public | BindingFlags.Instance);
                Assert.True(same is not null, $"{options.GetType().Name} has no {setting.Name}");
                object? expected = setting.GetValue(Walk);
                object? actual = same.GetValue(options);
                Assert.True(
                    expected is ImmutableArray<IImageSourceProvider> list ? list.SequenceEqual((ImmutableArray<IImageSourceProvider>)actual!) : Equals(expected, actual),
                    $"{options.GetType().Name}.{setting.Name} is {actual}, not the walk's {expected}");
            }
        }
    }

    [Fact]
    public void A_copy_changes_only_what_its_initializer_sets()
    {
        var copy = new ImageChainResolverOptions(Walk) { Timeout = TimeSpan.FromSeconds(1) };

        Assert.Equal((Walk.Policy, Walk.MaxDepth, TimeSpan.FromSeconds(1)), (copy.Policy, copy.MaxDepth, copy.Timeout));
        Assert.Equal(Walk.SourceProviders, copy.SourceProviders);
        Assert.Equal(TimeSpan.FromSeconds(9), Walk.Timeout);
    }

    [QemuImgFact]
    public async Task The_walks_sources_open_what_an_image_names_in_every_entry_point()
    {
        // The base exists only in the caller's own source: without it every entry point ends the chain missing.
        using var dir = new ScratchDirectory();
        const string Base = "/backing-chain-test-nowhere/base.raw";
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", Base, "-F", "raw", "top.qcow2", "1M");
        var memory = ImageSources.Memory([new KeyValuePair<string, ReadOnlyMemory<byte>>(Base, new byte[65536])]);
        // Every reference followed (qemu-img's rule), so that only the sources decide what is opened: the scanner
        // probes its images, and a probed image's references are otherwise opened only when trusted.
        var with = new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible, SourceProviders = [memory, ImageSources.Files] };
        var without = new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible };
        string top = dir["top.qcow2"];

        async Task<int[]> LayersAsync(ImageChainResolverOptions walk)
        {
            ImageChain resolved = await new ImageChainResolver(walk).ResolveAsync(top, ImageFormat.Qcow2);
            UploadInspection upload = await new ImageUploadGate(new UploadInspectionOptions(walk))
                .InspectAsync(PipeReader.Create(new MemoryStream(File.ReadAllBytes(top))), dir["upload.qcow2"], ImageFormat.Qcow2);
            StoreGraph graph = await new ImageStoreScanner(new ImageStoreScannerOptions(walk)).ScanGraphAsync(dir.Path);
            string xml = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{top}'/><target dev='vda'/></disk>";
            ImmutableArray<LibvirtDiskChain> disks = await new LibvirtDomainReader(walk).ReadAsync(new MemoryStream(Encoding.UTF8.GetBytes(xml)));
            return
            [
                resolved.Layers.Length,
                upload.Report.Chain.Layers.Length,
                graph.Images.Single(i => i.Path == top).Report.Chain.Layers.Length,
                Assert.Single(disks).Report.Chain.Layers.Length,
            ];
        }

        int[] opened = await LayersAsync(with);
        int[] missing = await LayersAsync(without);

        Assert.Equal([2, 2, 2, 2], opened);
        Assert.Equal([1, 1, 1, 1], missing);
    }
}
