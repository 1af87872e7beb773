using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Chain;

/// <summary>
/// The gate a local chain of recorded formats goes through layer after layer (the walk's synchronous path): the
/// same files as qemu-img, the same decisions, the same words when a file is missing, and no FIFO read.
/// </summary>
public sealed class FileWalkGateTests
{
    [QemuImgFact]
    public async Task Recorded_local_backing_files_are_opened_on_the_format_the_host_vouched_for()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "mid.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");
        JsonArray expected = QemuImg.Info(dir.Path, dir["top.qcow2"], backingChain: true, format: "qcow2").AsArray();

        ImageChain chain = await new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible })
            .ResolveAsync(dir["top.qcow2"], ImageFormat.Qcow2);

        Assert.True(chain.Ending == ChainEnding.Complete, $"{chain.Ending}: {chain.ErrorMessage}");
        Assert.Equal(expected.Select(layer => (string)layer!["filename"]!), chain.Layers.Select(layer => layer.FileName));
        Assert.Equal(2, chain.Decisions.Length);
        foreach (ReferenceDecision decision in chain.Decisions)
        {
            // Host posture: a declared or recorded format is the administrator's word, so its local names are followed as
            // authentic, not merely followed as qemu would follow anything.
            Assert.Equal(ReferenceOutcome.Opened, decision.Outcome);
            Assert.Equal(TrustBasis.AuthenticFormat, decision.Basis);
            Assert.Null(decision.CanonicalPath);
        }

        Assert.Equal([FormatSource.Declared, FormatSource.Recorded], chain.Decisions.Select(decision => decision.ReferrerFormatSource));
        Assert.Empty(chain.Findings);
    }

    [QemuImgFact]
    public async Task Layers_looked_up_from_their_directory_are_the_files_qemu_img_opens_as_the_chain_changes_directory()
    {
        // From the second layer in a directory on, the walk looks up only the last component, from a descriptor of
        // the directory. The chain below goes back and forth between two directories, through "..", a subdirectory
        // and a symlinked directory, each layer with a virtual size of its own: a lookup from the wrong directory
        // would read another layer (or none) and show here.
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["a/sub"]);
        Directory.CreateDirectory(dir["b"]);
        File.CreateSymbolicLink(dir["link"], dir["b"]);
        (string Path, string Backing)[] layers =
        [
            ("b/l0.qcow2", ""),
            ("b/l1.qcow2", "l0.qcow2"),
            ("b/l2.qcow2", "l1.qcow2"),
            ("a/l3.qcow2", "../link/l2.qcow2"),
            ("a/l4.qcow2", "l3.qcow2"),
            ("a/l5.qcow2", "l4.qcow2"),
            ("a/sub/l6.qcow2", "../l5.qcow2"),
            ("a/sub/l7.qcow2", "l6.qcow2"),
            ("a/sub/l8.qcow2", "l7.qcow2"),
            ("a/l9.qcow2", "sub/l8.qcow2"),
            ("a/l10.qcow2", "l9.qcow2"),
            ("a/l11.qcow2", "l10.qcow2"),
        ];
        for (int i = 0; i < layers.Length; i++)
        {
            string size = $"{i + 1}M";
            if (layers[i].Backing.Length == 0)
            {
                QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", layers[i].Path, size);
            }
            else
            {
                QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", layers[i].Backing, "-F", "qcow2", layers[i].Path, size);
            }
        }

        string top = dir[layers[^1].Path];
        JsonArray expected = QemuImg.Info(dir.Path, top, backingChain: true, format: "qcow2").AsArray();
        Assert.Equal(layers.Length, expected.Count);

        ImageChain chain = await new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible, MaxDepth = 50 })
            .ResolveAsync(top, ImageFormat.Qcow2);

        Assert.True(chain.Ending == ChainEnding.Complete, $"{chain.Ending}: {chain.ErrorMessage}");
        Assert.Equal(expected.Select(layer => (string)layer!["filename"]!), chain.Layers.Select(layer => layer.FileName));
        Assert.Equal(expected.Select(layer => (long)layer!["virtual-size"]!), chain.Layers.Select(layer => layer.VirtualSize));
        Assert.All(chain.Decisions, decision => Assert.Equal(ReferenceOutcome.Opened, decision.Outcome));
    }

    [QemuImgFact]
    public async Task A_layer_missing_from_a_directory_the_walk_holds_is_missing_in_the_same_words()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "l0.qcow2", "1M");
        for (int i = 1; i < 4; i++)
        {
            QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", $"l{i - 1}.qcow2", "-F", "qcow2", $"l{i}.qcow2", "1M");
        }

        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible });
        File.Delete(dir["l0.qcow2"]);
        ImageChain byDirectory = await resolver.ResolveAsync(dir["l3.qcow2"], ImageFormat.Qcow2);
        Directory.CreateDirectory(dir["x"]);
        File.Move(dir["l1.qcow2"], dir["x/l1.qcow2"]);
        ImageChain byName = await resolver.ResolveAsync(dir["x/l1.qcow2"], ImageFormat.Qcow2);

        // l0 is the third layer of one directory (looked up from its descriptor) in the first walk, and the second
        // layer, opened by its whole name, in the second: the same ending and the same words, naming the whole path.
        Assert.Equal(ChainEnding.Missing, byDirectory.Ending);
        Assert.Equal(ChainEnding.Missing, byName.Ending);
        Assert.Equal($"Could not open '{dir["l0.qcow2"]}': No such file or directory", byDirectory.Findings.Single().Message);
        Assert.Equal($"Could not open '{dir["x/l0.qcow2"]}': No such file or directory", byName.Findings.Single().Message);
    }

    [QemuImgFact]
    public async Task A_missing_recorded_backing_file_ends_the_chain_in_qemu_img_words()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        File.Delete(dir["base.qcow2"]);
        (int exitCode, _, string qemuError) = QemuImg.TryRun(dir.Path, "info", "--backing-chain", "-f", "qcow2", dir["top.qcow2"]);
        Assert.NotEqual(0, exitCode);

        ImageChain chain = await new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible })
            .ResolveAsync(dir["top.qcow2"], ImageFormat.Qcow2);

        Assert.Equal(ChainEnding.Missing, chain.Ending);
        ReferenceDecision decision = Assert.Single(chain.Decisions);
        Assert.Equal(ReferenceOutcome.Missing, decision.Outcome);
        Assert.Equal(TrustBasis.AuthenticFormat, decision.Basis);
        ChainFinding finding = Assert.Single(chain.Findings);
        Assert.Equal(FindingCodes.UnreachableImage, finding.Code);
        Assert.Contains(finding.Message, qemuError, System.StringComparison.Ordinal);
    }

    [QemuImgFact]
    public async Task A_recorded_backing_fifo_is_refused_by_its_type_without_blocking()
    {
        using var dir = new ScratchDirectory();
        Assert.Equal(0, ProcessRunner.Run("mkfifo", [dir["base.raw"]]).ExitCode);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "base.raw", "-F", "raw", "top.qcow2", "1M");

        Task<ImageChain> walk = new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible })
            .ResolveAsync(dir["top.qcow2"], ImageFormat.Qcow2).AsTask();
        Assert.Same(walk, await Task.WhenAny(walk, Task.Delay(System.TimeSpan.FromSeconds(30))));
        ImageChain chain = await walk;

        Assert.Equal(ChainEnding.Missing, chain.Ending);
        ReferenceDecision decision = Assert.Single(chain.Decisions);
        Assert.Equal(ReferenceOutcome.Unreadable, decision.Outcome);
        Assert.Equal(FindingCodes.UnreachableImage, Assert.Single(chain.Findings).Code);
    }
}
