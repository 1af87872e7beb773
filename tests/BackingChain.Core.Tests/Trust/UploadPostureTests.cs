using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Trust;

/// <summary>An upload is never the host's word: standard input is judged in the untrusted-image posture unless --host says otherwise.</summary>
public sealed class UploadPostureTests
{
    [QemuImgFact]
    public void Standard_input_is_judged_as_an_upload_unless_host_is_given()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "passwd.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-u", "-f", "qcow2", "-b", dir["passwd.raw"], "-F", "raw", "evil.qcow2", "1M");

        // Declared and recorded formats do not make an upload the administrator's word.
        (int exit, string json, string error) = CliRunner.RunWithInput(dir.Path, dir["evil.qcow2"], "check", "-f", "qcow2", "--output", "json", "-");
        Assert.True(exit == 1, json + error);
        JsonNode report = JsonNode.Parse(json)!;
        Assert.Equal(("unsafe", "untrusted-image", "reference-not-trusted"), ((string?)report["verdict"], (string?)report["posture"], (string?)report["reason"]));
        Assert.Equal("refused", (string?)report["layers"]![0]!["references"]![0]!["decision"]);

        // --host opts in to the host posture (a stream the administrator vouches for), as a file is judged.
        (int host, string hostJson, string hostError) = CliRunner.RunWithInput(dir.Path, dir["evil.qcow2"], "check", "-f", "qcow2", "--host", "--output", "json", "-");
        Assert.True(host == 0, hostJson + hostError);
        Assert.Equal("host", (string?)JsonNode.Parse(hostJson)!["posture"]);
        (int file, _, string fileError) = CliRunner.Run(dir.Path, "check", "-f", "qcow2", dir["evil.qcow2"]);
        Assert.True(file == 0, fileError);

        // Two postures at once, or --host where it changes nothing, are usage errors.
        Assert.Equal(2, CliRunner.RunWithInput(dir.Path, dir["evil.qcow2"], "check", "--host", "--untrusted", "-").ExitCode);
        Assert.Equal(2, CliRunner.Run(dir.Path, "check", "--host", dir["evil.qcow2"]).ExitCode);
    }

    [QemuImgFact]
    public void Standard_input_takes_the_depth_cap_a_file_takes()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "l0.img", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "l0.img", "-F", "raw", "l1.img");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "l1.img", "-F", "qcow2", "l2.img");

        (int exit, string json, string error) = CliRunner.RunWithInput(dir.Path, dir["l2.img"], "check", "-f", "qcow2", "--trust-root", dir.Path, "--name", dir["new.img"], "--max-depth", "2", "--output", "json", "-");
        (int file, string fileJson, _) = CliRunner.Run(dir.Path, "check", "-f", "qcow2", "--max-depth", "2", "--output", "json", dir["l2.img"]);

        // The walk stops at the cap in both; the untrusted posture of standard input then counts the file it did
        // not ask about as not trusted, the host posture of the file names the depth.
        Assert.True(exit == 1, json + error);
        JsonNode upload = JsonNode.Parse(json)!;
        Assert.Equal(2, upload["layers"]!.AsArray().Count);
        Assert.Contains(upload["findings"]!.AsArray(), f => (string?)f!["code"] == "chain-too-deep");
        Assert.Equal(1, file);
        Assert.Equal("chain-too-deep", (string?)JsonNode.Parse(fileJson)!["reason"]);
    }
}
