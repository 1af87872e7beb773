using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// Every error path of the CLI prints words, never a runtime resource key. The CLI's runtimeconfig turns
/// <c>System.Resources.UseSystemResourceKeys</c> on (it is published with it), so a message taken from the runtime
/// shows here as it would in the NativeAOT binary: <c>Xml_MessageWithErrorPosition, Xml_UserException, 1, 2</c>.
/// </summary>
public sealed partial class CliWordsTests
{
    [QemuImgFact]
    public async Task No_error_path_prints_a_resource_key()
    {
        Assert.True(UsesResourceKeys(), "the CLI's runtimeconfig no longer turns UseSystemResourceKeys on: this test would prove nothing");
        using var dir = new ScratchDirectory();
        File.WriteAllText(dir["malformed.xml"], "<domain><devices><disk type='file'><source file='/x'/></disk>");
        File.WriteAllText(dir["truncated.xml"], "<a");
        File.WriteAllText(dir["pool.xml"], "<pool type='dir'><name>x</name></pool>");
        File.WriteAllText(dir["dtd.xml"], "<!DOCTYPE disk [<!ENTITY x 'a'>]><disk type='file'><source file='/x'/></disk>");
        File.WriteAllText(dir["index.xml"], "<disk type='file'><source file='/x'/><backingStore type='file' index='x'><format type='raw'/><source file='/y'/></backingStore></disk>");
        File.WriteAllBytes(dir["binary.xml"], [0xff, 0xfe, 0x00, 0x3c, 0xd8, 0x00]);
        File.WriteAllText(dir["text.img"], "not an image at all\n");
        Directory.CreateDirectory(dir["folder"]);
        string missing = dir["missing.img"];
        string notDirectory = dir["text.img"] + "/below";
        string closed = "http://127.0.0.1:9/top.qcow2";

        // A server that answers every request with text that is not HTTP: the client's error is a resource in the runtime.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var stop = new CancellationTokenSource();
        Task answering = AnswerGarbageAsync(listener, stop.Token);
        string garbage = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/top.qcow2";
        File.WriteAllText(dir["network.xml"], $"<disk type='file'><driver type='qcow2'/><source file='{dir["text.img"]}'/><backingStore type='network'><format type='raw'/>"
            + $"<source protocol='http' name='top.qcow2'><host name='127.0.0.1' port='{((IPEndPoint)listener.LocalEndpoint).Port}'/></source><backingStore/></backingStore></disk>");

        var runs = new List<string[]>
        {
            Array.Empty<string>(),
            new[] { "frobnicate" },
            new[] { "--frobnicate" },
        };
        runs.Add(["domain", "--trust-url", "http://127.0.0.1/", dir["network.xml"]]);
        foreach (string xml in (string[])["malformed.xml", "truncated.xml", "pool.xml", "dtd.xml", "index.xml", "binary.xml", "missing.xml", "folder", "text.img/below"])
        {
            runs.Add(["domain", dir[xml]]);
        }

        foreach (string command in (string[])["info", "check", "xml", "domain", "scan", "rebase", "relocate"])
        {
            runs.Add([command]);
            runs.Add([command, "--no-such-option", "x"]);
            runs.Add([command, "--output"]);
            runs.Add([command, "--output", "yaml", "x"]);
            runs.Add([command, "--trust-root", "", "x"]);
            runs.Add([command, "--trust-root", dir["missing-root"], "x"]);
            runs.Add([command, "--trust-root", dir["text.img"], "x"]);
            runs.Add([command, "--trust-url", "ftp://example/x", "x"]);
            runs.Add([command, "--trust-url", "http://user@example/x", "x"]);
            runs.Add([command, "--trust-digest", "xyz", "x"]);
            runs.Add([command, "--max-depth", "0", "x"]);
            runs.Add([command, "-f", "nosuchformat", "x"]);
            runs.Add([command, "--target", "bad target", "x"]);
            runs.Add([command, "a", "b"]);
            foreach (string file in (string[])[missing, dir["folder"], notDirectory, dir["text.img"], closed, garbage])
            {
                runs.Add([command, file]);
                runs.Add([command, "-f", "qcow2", file]);
            }
        }

        runs.Add(["rebase", "-u", "-b", "base.raw", "-F", "raw", "-f", "qcow2", dir["text.img"]]);
        runs.Add(["rebase", "-u", "-b", "base.raw", "-F", "raw", missing]);
        runs.Add(["rebase", "-u", "-b", "base.raw", "-F", "raw", dir["folder"]]);
        runs.Add(["rebase", "-u", "-b", "base.raw", "-F", "raw", notDirectory]);
        runs.Add(["relocate", "--from", dir["a"], "--to", dir["b"], missing]);
        runs.Add(["relocate", "--from", dir["a"], "--to", dir["b"], dir["folder"]]);
        runs.Add(["relocate", "--from", dir["a"], "--to", dir["b"], notDirectory]);
        runs.Add(["relocate", "--from", dir["a"], "--to", dir["b"], dir["text.img"]]);
        runs.Add(["check", "--fix", "-f", "qcow2", dir["text.img"]]);
        runs.Add(["scan", notDirectory]);

        var keys = new List<string>();
        foreach (string[] arguments in runs)
        {
            (int exit, string output, string error) = CliRunner.Run(dir.Path, arguments);
            foreach (Match match in ResourceKey().Matches(output + "\n" + error))
            {
                keys.Add($"backing-chain {string.Join(' ', arguments)} (exit {exit}): {match.Value}\n    {error.Trim()}");
            }
        }

        stop.Cancel();
        listener.Stop();
        await answering;
        Assert.True(keys.Count == 0, string.Join('\n', keys));
    }

    private static async Task AnswerGarbageAsync(TcpListener listener, CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                using TcpClient client = await listener.AcceptTcpClientAsync(cancellationToken);
                NetworkStream stream = client.GetStream();
                await stream.ReadAtLeastAsync(new byte[4096], 1, throwOnEndOfStream: false, cancellationToken);
                await stream.WriteAsync("garbage garbage\r\n\r\n"u8.ToArray(), cancellationToken);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
        }
    }

    /// <summary>
    /// A resource key: a name with underscores and a lower-case letter, such as <c>IO_FileNotFound_FileName</c> or
    /// <c>net_http_client_execution_error</c> (the usage lines' placeholders, <c>BACKING_FMT</c>, are all capitals).
    /// </summary>
    [GeneratedRegex(@"\b(?=[A-Za-z0-9_]*[a-z])[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*\b")]
    private static partial Regex ResourceKey();

    private static bool UsesResourceKeys() =>
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "backing-chain.runtimeconfig.json")).Contains("\"System.Resources.UseSystemResourceKeys\": true", StringComparison.Ordinal);
}
