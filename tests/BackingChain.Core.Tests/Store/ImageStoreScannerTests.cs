using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Store;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Store;

/// <summary>
/// A store made with qemu-img (bases, overlays with and without a recorded backing format, relative and absolute
/// names, a deleted base, a moved base, an orphan, a raw image carrying a qcow2 header, a loop, a FIFO and a symlink
/// out of the store), scanned once and compared with what the test built, with single checks, and with qemu-img.
/// </summary>
public sealed class ImageStoreScannerTests
{
    [QemuImgTheory]
    [InlineData(TrustPosture.Host)]
    [InlineData(TrustPosture.UntrustedImage)]
    public async Task Every_image_gets_the_verdict_a_check_of_it_alone_gives(TrustPosture posture)
    {
        using var dir = new ScratchDirectory();
        string store = BuildStore(dir);
        var policy = new TrustPolicy { Posture = posture, TrustedRoots = [store] };

        var scanned = new List<StoreImage>();
        await foreach (StoreImage image in new ImageStoreScanner(new ImageStoreScannerOptions { Policy = policy, MaxParallelism = 3 }).ScanAsync(store))
        {
            scanned.Add(image);
        }

        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = policy });
        Assert.Equal(ExpectedFiles(store), scanned.Where(i => i.ScanProblem is null).Select(i => i.Path).Order(StringComparer.Ordinal));

        // The link is named, not followed: what a check of it would follow is not the store's.
        Assert.Equal([(Path.Combine(store, "outside"), FindingCodes.SymbolicLink)], scanned.Where(i => i.ScanProblem is not null).Select(i => (i.Path, i.ScanProblem!.Code)));
        foreach (StoreImage image in scanned.Where(i => i.ScanProblem is null))
        {
            TrustReport alone = resolver.Check(image.Path);
            Assert.Equal(Describe(alone), Describe(image.Report));
        }
    }

    [QemuImgFact]
    public async Task The_graph_is_the_store_the_test_built()
    {
        using var dir = new ScratchDirectory();
        string store = BuildStore(dir);
        var policy = new TrustPolicy { TrustedRoots = [store] };

        StoreGraph graph = await new ImageStoreScanner(new ImageStoreScannerOptions { Policy = policy }).ScanGraphAsync(store);

        StoreImage Image(string name) => graph.Images.Single(i => i.Path == Path.Combine(store, name));
        string[] Names(IEnumerable<StoreImage> images) => [.. images.Select(i => Path.GetRelativePath(store, i.Path))];

        Assert.Equal(store, graph.Directory);
        Assert.Equal(["a.qcow2", "sub/b.qcow2"], Names(graph.GetDependents(Image("base.qcow2"))));
        Assert.Equal(["a.qcow2", "sub/b.qcow2", "sub/c.qcow2"], Names(graph.GetDependents(Image("base.qcow2"), transitive: true)));
        Assert.Equal(["sub/c.qcow2"], Names(graph.GetDependents(Image("a.qcow2"))));
        Assert.Equal(["nofmt.qcow2"], Names(graph.GetDependents(Image("base.raw"))));
        Assert.Equal(["x.qcow2"], Names(graph.GetDependents(Image("disk.raw"))));
        Assert.Equal(["loop2.qcow2"], Names(graph.GetDependents(Image("loop1.qcow2"))));
        Assert.Equal(["loop1.qcow2"], Names(graph.GetDependents(Image("loop2.qcow2"), transitive: true)));
        Assert.Empty(graph.GetDependents(Image("sub/c.qcow2")));

        Assert.Equal(["d.qcow2", "fifo", "moved.qcow2"], Names(graph.BrokenChains));
        Assert.Equal(["lonely.raw", "m-base.qcow2"], Names(graph.Orphans));
        Assert.Equal(["disk.raw", "nofmt.qcow2", "x.qcow2"], Names(graph.UnrecordedBackingFormat));
        Assert.Equal(["d.qcow2", "disk.raw", "fifo", "loop1.qcow2", "loop2.qcow2", "moved.qcow2", "outside", "x.qcow2"], Names(graph.Unsafe));
        Assert.Equal(["outside"], Names(graph.Unscanned));
        Assert.Equal(FindingCodes.SymbolicLink, Image("outside").ScanProblem!.Code);
        Assert.Equal([FindingCodes.SymbolicLink], Image("outside").Report.Findings.Select(f => f.Code));
        Assert.False(Image("outside").Report.IsSafe);
        Assert.Equal(ChainEnding.Loop, Image("loop1.qcow2").Report.Chain.Ending);
        Assert.Contains(Image("x.qcow2").Report.Findings, f => f.Code == FindingCodes.UnreachableImage && f.Message.Contains("/etc/passwd", StringComparison.Ordinal));
    }

    [QemuImgFact]
    public async Task Chains_match_qemu_img_and_broken_ones_fail_there_too()
    {
        using var dir = new ScratchDirectory();
        string store = BuildStore(dir);

        // qemu-img trusts everything: the same under a policy that follows every local name.
        StoreGraph graph = await new ImageStoreScanner(new ImageStoreScannerOptions { Policy = TrustPolicy.QemuCompatible }).ScanGraphAsync(store);

        foreach (StoreImage image in graph.Images.Where(i => Path.GetFileName(i.Path) != "fifo"))
        {
            (int exit, string json, _) = QemuImg.TryRun(store, "info", "--backing-chain", "--output=json", "-U", image.Path);
            if (image.Report.Chain.Ending == ChainEnding.Complete)
            {
                Assert.True(exit == 0, image.Path);
                JsonArray chain = JsonNode.Parse(json)!.AsArray();
                Assert.Equal(
                    chain.Select(layer => ((string)layer!["filename"]!, (string)layer["format"]!)),
                    image.Report.Chain.Layers.Select(layer => (layer.FileName, layer.Format.GetQemuName())));
            }
            else
            {
                Assert.True(exit != 0, $"{image.Path}: qemu-img read a chain that ended {image.Report.Chain.Ending}");
            }
        }
    }

    [QemuImgFact]
    public async Task A_base_shared_by_many_overlays_is_read_once()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        for (int i = 0; i < 20; i++)
        {
            QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", $"o{i:00}.qcow2");
        }

        var memo = new LayerMemo();
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = new TrustPolicy { TrustedRoots = [dir.Path] } });
        await Parallel.ForEachAsync(Enumerable.Range(0, 20), async (i, token) =>
            await resolver.ResolveAsync(dir[$"o{i:00}.qcow2"], null, memo, token));

        // 20 overlays probed, and the base read once as recorded qcow2.
        Assert.Equal(21, memo.Reads);
    }

    [QemuImgFact]
    public async Task A_layer_rewritten_in_place_is_read_again_not_answered_from_memory()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "other.qcow2", "2M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "o1.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "o2.qcow2");
        var memo = new LayerMemo();
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = new TrustPolicy { TrustedRoots = [dir.Path] } });
        ImageChain first = await resolver.ResolveAsync(dir["o1.qcow2"], null, memo, CancellationToken.None);

        // Same inode, same length, new header: only the change time tells.
        byte[] replacement = File.ReadAllBytes(dir["other.qcow2"]);
        Assert.Equal(new FileInfo(dir["base.qcow2"]).Length, replacement.Length);
        using (var stream = new FileStream(dir["base.qcow2"], FileMode.Open, FileAccess.Write))
        {
            stream.Write(replacement);
        }

        ImageChain second = await resolver.ResolveAsync(dir["o2.qcow2"], null, memo, CancellationToken.None);

        Assert.Equal(1024 * 1024, first.Layers[1].VirtualSize);
        Assert.Equal(first.Layers[1].Identity, second.Layers[1].Identity);
        Assert.Equal((long)QemuImg.Info(dir.Path, "base.qcow2")["virtual-size"]!, second.Layers[1].VirtualSize);
        Assert.Equal(2 * 1024 * 1024, second.Layers[1].VirtualSize);
    }

    [QemuImgFact]
    public async Task A_store_changing_during_the_scan_gives_findings_not_exceptions()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "template.qcow2");
        byte[] overlay = File.ReadAllBytes(dir["template.qcow2"]);
        byte[] baseBytes = File.ReadAllBytes(dir["base.qcow2"]);
        for (int i = 0; i < 400; i++)
        {
            File.WriteAllBytes(dir[$"o{i:000}.qcow2"], overlay);
        }

        var policy = new TrustPolicy { TrustedRoots = [dir.Path] };
        using var stop = new CancellationTokenSource();

        // Another thread removes overlays, turns some into FIFOs, and replaces the base by rename and in place.
        Task mutator = Task.Run(() =>
        {
            var random = new Random(12);
            while (!stop.IsCancellationRequested)
            {
                string victim = dir[$"o{random.Next(400):000}.qcow2"];
                try
                {
                    switch (random.Next(4))
                    {
                        case 0:
                            File.Delete(victim);
                            break;
                        case 1:
                            File.Delete(victim);
                            MakeFifo(victim);
                            break;
                        case 2:
                            File.WriteAllBytes(dir["base.new"], baseBytes);
                            File.Move(dir["base.new"], dir["base.qcow2"], overwrite: true);
                            break;
                        default:
                            File.WriteAllBytes(dir["base.qcow2"], baseBytes);
                            break;
                    }
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // The scan may hold the file at that moment; the next change will do.
                }
            }
        });

        var seen = new List<StoreImage>();
        try
        {
            await foreach (StoreImage image in new ImageStoreScanner(new ImageStoreScannerOptions { Policy = policy, MaxParallelism = 4 }).ScanAsync(dir.Path))
            {
                seen.Add(image);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await mutator;
        }

        Assert.NotEmpty(seen);
        Assert.Equal(seen.Count, seen.Select(i => i.Path).Distinct().Count());
        foreach (StoreImage image in seen)
        {
            // Either a whole chain, judged, or a chain that ended early with a finding saying why.
            Assert.True(
                image.Report.Chain.Ending == ChainEnding.Complete || !image.Report.Findings.IsEmpty,
                $"{image.Path}: {image.Report.Chain.Ending} without a finding");
            Assert.True(!image.IsSafe || image.Report.Chain.Ending == ChainEnding.Complete, image.Path);
        }
    }

    [QemuImgFact]
    public async Task Cancelling_or_stopping_early_ends_the_scan()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        for (int i = 0; i < 50; i++)
        {
            File.Copy(dir["base.qcow2"], dir[$"copy{i:00}.qcow2"]);
        }

        var scanner = new ImageStoreScanner(new ImageStoreScannerOptions { MaxParallelism = 2 });
        int taken = 0;
        await foreach (StoreImage image in scanner.ScanAsync(dir.Path))
        {
            if (++taken == 3)
            {
                break;
            }
        }

        using var cancel = new CancellationTokenSource();
        int beforeCancel = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (StoreImage image in scanner.ScanAsync(dir.Path, cancel.Token))
            {
                beforeCancel++;
                await cancel.CancelAsync();
            }
        });

        Assert.Equal(3, taken);
        Assert.Equal(1, beforeCancel);
        await Assert.ThrowsAsync<DirectoryNotFoundException>(() => scanner.ScanGraphAsync(dir["no-such-store"]));
    }

    [QemuImgTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void What_is_put_at_a_listed_name_after_the_listing_is_a_finding_and_never_followed(bool openat2)
    {
        using var dir = new ScratchDirectory();
        string store = dir["store"];
        Directory.CreateDirectory(Path.Combine(store, "sub"));
        Directory.CreateDirectory(dir["elsewhere/sub"]);
        foreach (string name in new[] { "link.qcow2", "fifo.qcow2", "renamed.qcow2", "sub/deep.qcow2", "kept.qcow2" })
        {
            QemuImg.Run(store, "create", "-q", "-f", "qcow2", name, "1M");
        }

        // What the swaps point to: a qcow2 outside the store naming /etc/shadow, as a guest would plant it.
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/shadow", "-F", "raw", "elsewhere/evil.qcow2", "1M");
        File.Copy(dir["elsewhere/evil.qcow2"], dir["elsewhere/sub/deep.qcow2"]);

        bool before = UnixFile.Openat2Disabled;
        UnixFile.Openat2Disabled = !openat2;
        try
        {
            using var listing = new StoreListing(store, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            List<StoreEntry> entries = [.. listing.List()];
            Assert.All(entries, e => Assert.Null(e.Code));

            // Between the listing and the opens: a link to the planted image, a FIFO, another file renamed over the
            // listed one, and a folder of the path replaced by a link to a folder outside.
            File.Delete(Path.Combine(store, "link.qcow2"));
            File.CreateSymbolicLink(Path.Combine(store, "link.qcow2"), dir["elsewhere/evil.qcow2"]);
            File.Delete(Path.Combine(store, "fifo.qcow2"));
            MakeFifo(Path.Combine(store, "fifo.qcow2"));
            File.Copy(Path.Combine(store, "kept.qcow2"), Path.Combine(store, "new.tmp"));
            File.Move(Path.Combine(store, "new.tmp"), Path.Combine(store, "renamed.qcow2"), overwrite: true);
            Directory.Move(Path.Combine(store, "sub"), Path.Combine(store, "sub.old"));
            Directory.CreateSymbolicLink(Path.Combine(store, "sub"), dir["elsewhere/sub"]);

            var outcomes = new Dictionary<string, string?>();
            foreach (StoreEntry entry in entries)
            {
                using FileImageSource? source = listing.Open(entry, out StoreEntry problem, out bool vanished);
                Assert.False(vanished, entry.Relative);
                outcomes[entry.Relative] = source is null ? problem.Code : "opened";
                if (source is not null)
                {
                    Assert.Equal(Path.Combine(store, "kept.qcow2"), source.Name);
                }
            }

            Assert.Equal(
                new Dictionary<string, string?>
                {
                    ["fifo.qcow2"] = FindingCodes.ChangedDuringScan,
                    ["kept.qcow2"] = "opened",
                    ["link.qcow2"] = FindingCodes.ChangedDuringScan,
                    ["renamed.qcow2"] = FindingCodes.ChangedDuringScan,
                    ["sub/deep.qcow2"] = FindingCodes.ChangedDuringScan,
                },
                outcomes);
        }
        finally
        {
            UnixFile.Openat2Disabled = before;
        }
    }

    [Fact]
    public async Task A_tree_deeper_than_PATH_MAX_is_a_finding_not_a_crash()
    {
        using var dir = new ScratchDirectory();
        string store = dir["store"];
        Directory.CreateDirectory(store);
        File.WriteAllBytes(Path.Combine(store, "shallow.raw"), new byte[4096]);
        try
        {
            string deepest = DeepTree.Build(store);

            StoreGraph graph = await new ImageStoreScanner().ScanGraphAsync(store);

            StoreImage unseen = Assert.Single(graph.Unscanned);
            Assert.Equal(FindingCodes.PathTooLong, unseen.ScanProblem!.Code);
            Assert.StartsWith(unseen.Path, deepest, StringComparison.Ordinal);
            Assert.True(System.Text.Encoding.UTF8.GetByteCount(unseen.Path) >= 4096, unseen.Path.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Contains(unseen, graph.Unsafe);
            Assert.True(graph.Images.Single(i => i.Path == Path.Combine(store, "shallow.raw")).Report.IsSafe);
        }
        finally
        {
            DeepTree.Remove(store);
        }
    }

    /// <summary>
    /// The store: what each file is, for the assertions above.
    /// <code>
    /// base.qcow2      qcow2, no backing           used by a.qcow2 (relative) and sub/b.qcow2 (absolute)
    /// sub/c.qcow2     -> ../a.qcow2 -> base.qcow2 a three-layer chain
    /// base.raw        raw                          used by nofmt.qcow2, whose backing format is not recorded
    /// lonely.raw      raw                          an orphan
    /// d.qcow2         -> gone.qcow2                deleted: broken
    /// moved.qcow2     -> old/m-base.qcow2          the base was moved to m-base.qcow2: broken, and m-base an orphan
    /// disk.raw        raw to its owner, but holds a qcow2 header naming /etc/passwd: probed, unsafe
    /// x.qcow2         -> disk.raw, format not recorded: probed, unsafe
    /// loop1/loop2     a backing loop
    /// fifo            a FIFO: not opened for reading, a finding
    /// outside         a symlink to /etc: not followed
    /// </code>
    /// </summary>
    private static string BuildStore(ScratchDirectory dir)
    {
        string store = dir["store"];
        Directory.CreateDirectory(Path.Combine(store, "sub"));
        Directory.CreateDirectory(Path.Combine(store, "old"));
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "a.qcow2");
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-b", Path.Combine(store, "base.qcow2"), "-F", "qcow2", "sub/b.qcow2");
        QemuImg.Run(Path.Combine(store, "sub"), "create", "-q", "-f", "qcow2", "-b", "../a.qcow2", "-F", "qcow2", "c.qcow2");
        QemuImg.Run(store, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(store, "create", "-q", "-f", "raw", "lonely.raw", "1M");
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.raw", "-F", "raw", "nofmt.qcow2");
        ClearV2BackingFormat(Path.Combine(store, "nofmt.qcow2"));
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "gone.qcow2", "1M");
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", "d.qcow2");
        File.Delete(Path.Combine(store, "gone.qcow2"));
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "old/m-base.qcow2", "1M");
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-b", Path.Combine(store, "old/m-base.qcow2"), "-F", "qcow2", "moved.qcow2");
        File.Move(Path.Combine(store, "old/m-base.qcow2"), Path.Combine(store, "m-base.qcow2"));
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b", "/etc/passwd", "-F", "raw", "disk.raw", "1M");
        ClearV2BackingFormat(Path.Combine(store, "disk.raw"));
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b", "disk.raw", "-F", "raw", "x.qcow2", "1M");
        ClearV2BackingFormat(Path.Combine(store, "x.qcow2"));
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-u", "-b", "loop2.qcow2", "-F", "qcow2", "loop1.qcow2", "1M");
        QemuImg.Run(store, "create", "-q", "-f", "qcow2", "-u", "-b", "loop1.qcow2", "-F", "qcow2", "loop2.qcow2", "1M");
        MakeFifo(Path.Combine(store, "fifo"));
        File.CreateSymbolicLink(Path.Combine(store, "outside"), "/etc");
        return store;
    }

    private static string[] ExpectedFiles(string store) =>
    [
        .. new[]
        {
            "a.qcow2", "base.qcow2", "base.raw", "d.qcow2", "disk.raw", "fifo", "lonely.raw", "loop1.qcow2", "loop2.qcow2",
            "m-base.qcow2", "moved.qcow2", "nofmt.qcow2", "sub/b.qcow2", "sub/c.qcow2", "x.qcow2",
        }.Select(name => Path.Combine(store, name)).Order(StringComparer.Ordinal),
    ];

    private static void MakeFifo(string path)
    {
        Assert.Equal(0, ProcessRunner.Run("mkfifo", [path]).ExitCode);
    }

    /// <summary>A qcow2 v2 image keeps its backing format in the extension at 0x48: an end marker there unrecords it.</summary>
    internal static void ClearV2BackingFormat(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Array.Clear(bytes, 0x48, 8);
        File.WriteAllBytes(path, bytes);
    }

    private static string Describe(TrustReport report) => string.Join(
        "\n",
        [
            $"{report.IsSafe} {report.Reason} {report.Chain.Ending} {report.Chain.ErrorMessage}",
            .. report.Layers.Select(l => $"{l.FileName} {l.Format} {l.FormatSource} {l.Decision} {l.Reason} {l.Layer.VirtualSize} {l.Layer.Identity} "
                + string.Join(",", l.References.Select(r => $"{r.Reference.StoredName}:{r.Outcome}:{r.Basis}"))),
            .. report.Findings.Select(f => $"{f.Code} {f.LayerIndex} {f.Message}"),
            .. report.Remediation,
        ]);
}
