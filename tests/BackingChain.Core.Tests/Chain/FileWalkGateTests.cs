using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;

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
