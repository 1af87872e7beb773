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

    [UnprivilegedFact]
    public void A_folder_or_file_the_user_may_not_read_is_named_and_the_store_is_not_safe()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["store/locked"]);
        QemuImg.Run(dir["store"], "create", "-q", "-f", "raw", "ok.raw", "1M");
        QemuImg.Run(dir["store"], "create", "-q", "-f", "qcow2", "secret.qcow2", "1M");

        // What the locked folder hides: an image naming /etc/shadow, which a scan that cannot see it must not call safe.
        QemuImg.Run(dir["store/locked"], "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b", "/etc/shadow", "-F", "raw", "evil.qcow2", "1M");
        ProcessRunner.Run("chmod", ["755", dir.Path, dir["store"]]).Require("chmod");
        ProcessRunner.Run("chmod", ["644", dir["store/ok.raw"]]).Require("chmod");
        ProcessRunner.Run("chmod", ["000", dir["store/secret.qcow2"], dir["store/locked"]]).Require("chmod");

        ProcessResult json = Unprivileged.RunCli(dir.Path, "scan", "--output", "json", "store");
        ProcessResult text = Unprivileged.RunCli(dir.Path, "scan", "store");

        Assert.True(json.ExitCode == 1, json.StandardError);
        JsonNode graph = JsonNode.Parse(json.StandardOutput)!;
        Assert.Equal("unsafe", (string)graph["verdict"]!);
        Assert.Equal([dir["store/locked"], dir["store/secret.qcow2"]], graph["not-scanned"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(2, (int)graph["summary"]!["not-scanned"]!);
        JsonArray images = graph["images"]!.AsArray();
        JsonNode Entry(string name) => images.Single(i => (string)i!["filename"]! == dir[name])!;
        Assert.Equal("unreadable-directory", (string)Entry("store/locked")["not-scanned"]!);
        Assert.Equal("unreadable-directory", (string)Entry("store/locked")["findings"]![0]!["code"]!);
        Assert.Equal("unreadable-file", (string)Entry("store/secret.qcow2")["findings"]![0]!["code"]!);
        Assert.Equal("unsafe", (string)Entry("store/secret.qcow2")["verdict"]!);
        Assert.Equal("safe", (string)Entry("store/ok.raw")["verdict"]!);

        Assert.Equal(1, text.ExitCode);
        Assert.Contains($"not scanned (2):\n  {dir["store/locked"]}: unreadable-directory: Could not list the folder '{dir["store/locked"]}': Permission denied", text.StandardOutput, StringComparison.Ordinal);
        Assert.Contains($"  {dir["store/secret.qcow2"]}: unreadable-file: Could not open '{dir["store/secret.qcow2"]}': Permission denied", text.StandardOutput, StringComparison.Ordinal);
        Assert.EndsWith(", 2 not scanned)\n", text.StandardOutput, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void Symbolic_links_and_a_tree_deeper_than_PATH_MAX_are_named_exit_1_and_nothing_crashes()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["store"]);
        QemuImg.Run(dir["store"], "create", "-q", "-f", "raw", "ok.raw", "1M");
        File.CreateSymbolicLink(dir["store/alias.raw"], "ok.raw");
        File.CreateSymbolicLink(dir["store/etc"], "/etc");
        try
        {
            DeepTree.Build(dir["store"]);

            (int exit, string json, string error) = CliRunner.Run(dir.Path, "scan", "--output=json", "store");
            (int textExit, string text, string textError) = CliRunner.Run(dir.Path, "scan", "store");

            Assert.True(exit == 1, error);
            JsonNode graph = JsonNode.Parse(json)!;
            Assert.Equal("unsafe", (string)graph["verdict"]!);
            JsonArray images = graph["images"]!.AsArray();
            // Ordered by path; the deep tree is named once, at the first folder whose path no program can open.
            string FirstLevel(string path) => Path.GetRelativePath(dir["store"], path).Split('/')[0];
            Assert.Equal(
                [("alias.raw", "symbolic-link"), (DeepTree.Level, "path-too-long"), ("etc", "symbolic-link")],
                images.Where(i => i!["not-scanned"] is not null).Select(i => (FirstLevel((string)i!["filename"]!), (string)i["not-scanned"]!)));
            Assert.Equal("safe", (string)images.Single(i => (string)i!["filename"]! == dir["store/ok.raw"])!["verdict"]!);

            Assert.True(textExit == 1, textError);
            Assert.Empty(textError);
            Assert.Contains($"  {dir["store/alias.raw"]}: symbolic-link: '{dir["store/alias.raw"]}' is a symbolic link;", text, StringComparison.Ordinal);
            Assert.Contains(": path-too-long: ", text, StringComparison.Ordinal);
        }
        finally
        {
            DeepTree.Remove(dir["store"]);
        }
    }

    [StraceFact]
    public void A_symbolic_link_in_the_store_is_never_opened_nor_what_it_leads_to()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["store"]);
        Directory.CreateDirectory(dir["elsewhere"]);
        QemuImg.Run(dir["store"], "create", "-q", "-f", "raw", "ok.raw", "1M");
        QemuImg.Run(dir["elsewhere"], "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/shadow", "-F", "raw", "evil.qcow2", "1M");
        File.CreateSymbolicLink(dir["store/alias.qcow2"], dir["elsewhere/evil.qcow2"]);
        Directory.CreateSymbolicLink(dir["store/folder"], dir["elsewhere"]);

        string log = dir["scan.strace"];
        ProcessResult result = ProcessRunner.Run(
            "strace",
            ["-f", "-qq", "-o", log, "-e", "trace=%file", "dotnet", Path.Combine(AppContext.BaseDirectory, "backing-chain.dll"), "scan", "--output", "json", "store"],
            dir.Path);

        // Looked at (statx without following), never opened; what they lead to never named at all.
        string[] traced = File.ReadAllLines(log);
        string[] opens = [.. traced.Where(line => line.Contains("open", StringComparison.Ordinal))];
        Assert.DoesNotContain(traced, line => line.Contains("elsewhere", StringComparison.Ordinal) || line.Contains("/etc/shadow", StringComparison.Ordinal));
        Assert.DoesNotContain(opens, line => line.Contains("alias.qcow2", StringComparison.Ordinal) || line.Contains("\"folder", StringComparison.Ordinal) || line.Contains("/folder", StringComparison.Ordinal));
        Assert.Contains(opens, line => line.Contains("ok.raw", StringComparison.Ordinal));

        Assert.True(result.ExitCode == 1, result.StandardError);
        JsonNode graph = JsonNode.Parse(result.StandardOutput)!;
        Assert.Equal([dir["store/alias.qcow2"], dir["store/folder"]], graph["not-scanned"]!.AsArray().Select(n => (string)n!));
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
