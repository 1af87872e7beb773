using System;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary><c>backing-chain scan DIR</c>: exit codes, the JSON graph, the human summary, and usage.</summary>
public sealed class CliScanTests
{
    [QemuImgFact]
    public void Json_lists_every_image_with_its_chain_and_who_uses_it()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["store/sub"]);
        QemuImg.Run(dir["store"], "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(dir["store"], "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "a.qcow2");
        QemuImg.Run(dir["store/sub"], "create", "-q", "-f", "qcow2", "-b", "../a.qcow2", "-F", "qcow2", "b.qcow2");

        (int exit, string json, string error) = CliRunner.Run(dir.Path, "scan", "--trust-root", "store", "--output=json", "store");

        Assert.True(exit == 0, error);
        JsonNode graph = JsonNode.Parse(json)!;
        Assert.Equal(dir["store"], (string)graph["directory"]!);
        Assert.Equal("safe", (string)graph["verdict"]!);
        Assert.Equal(3, (int)graph["summary"]!["images"]!);
        JsonArray images = graph["images"]!.AsArray();
        JsonNode Image(string name) => images.Single(i => (string)i!["filename"]! == dir[name])!;
        Assert.Equal([dir["store/a.qcow2"]], Image("store/base.qcow2")["used-by"]!.AsArray().Select(n => (string)n!));
        Assert.Equal([dir["store/sub/b.qcow2"]], Image("store/a.qcow2")["used-by"]!.AsArray().Select(n => (string)n!));

        // The chain is the one qemu-img reads.
        JsonArray oracle = QemuImg.Info(dir.Path, dir["store/sub/b.qcow2"], backingChain: true).AsArray();
        Assert.Equal(
            oracle.Select(layer => (string)layer!["filename"]!),
            Image("store/sub/b.qcow2")["chain"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(["../a.qcow2", dir["store/sub/../a.qcow2"], "qcow2"], new[] { "name", "full-name", "format" }.Select(k => (string)Image("store/sub/b.qcow2")["backing"]![k]!));
    }

    [QemuImgFact]
    public void Unsafe_and_broken_images_exit_1_and_are_named_in_the_summary()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "a.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "gone.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", "d.qcow2");
        File.Delete(dir["gone.qcow2"]);

        (int exit, string text, _) = CliRunner.Run(dir.Path, "scan", "--trust-root", ".", ".");
        (int jsonExit, string json, _) = CliRunner.Run(dir.Path, "scan", "--output", "json", ".");

        Assert.Equal(1, exit);
        Assert.Contains($"broken chains (1):\n  {dir["d.qcow2"]}: Could not open '{dir["gone.qcow2"]}'", text, StringComparison.Ordinal);
        Assert.EndsWith("verdict: unsafe (3 image(s): 2 safe, 1 unsafe, 1 broken, 0 orphan(s), 0 without backing format)\n", text, StringComparison.Ordinal);

        // Without a trust root the probed overlays are refused, yet the graph still says who names the base.
        Assert.Equal(1, jsonExit);
        JsonNode graph = JsonNode.Parse(json)!;
        JsonNode baseImage = graph["images"]!.AsArray().Single(i => (string)i!["filename"]! == dir["base.qcow2"])!;
        Assert.Equal([dir["a.qcow2"]], baseImage["used-by"]!.AsArray().Select(n => (string)n!));
        Assert.Equal([dir["a.qcow2"], dir["d.qcow2"]], graph["unsafe"]!.AsArray().Select(n => (string)n!));
        Assert.Empty(graph["orphans"]!.AsArray());
    }

    [Fact]
    public void Usage_errors_exit_2_help_exits_0_and_a_missing_directory_exits_1()
    {
        using var dir = new ScratchDirectory();

        (int noDir, _, string noDirError) = CliRunner.Run(dir.Path, "scan");
        (int badOption, _, _) = CliRunner.Run(dir.Path, "scan", "-f", "qcow2", ".");
        (int help, string helpText, _) = CliRunner.Run(dir.Path, "scan", "-h");
        (int missing, string output, string missingError) = CliRunner.Run(dir.Path, "scan", "no-such-store");

        Assert.Equal(2, noDir);
        Assert.Contains("missing store directory", noDirError, StringComparison.Ordinal);
        Assert.Contains("usage: backing-chain scan", noDirError, StringComparison.Ordinal);
        Assert.Equal(2, badOption);
        Assert.Equal(0, help);
        Assert.StartsWith("usage: backing-chain scan", helpText, StringComparison.Ordinal);
        Assert.Equal(1, missing);
        Assert.Empty(output);
        Assert.Equal("backing-chain: Could not open 'no-such-store': No such directory\n", missingError);
    }
}
