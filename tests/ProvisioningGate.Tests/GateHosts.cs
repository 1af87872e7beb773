using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;

namespace ProvisioningGate.Tests;

/// <summary>A running provisioning gate over a fresh image root, and a client for it.</summary>
public abstract class GateHost : IDisposable
{
    private readonly ScratchDirectory _scratch = new();

    /// <param name="rootThroughLink">Whether the image root the service is given is a symbolic link to the folder.</param>
    protected GateHost(bool rootThroughLink = false)
    {
        ImageRoot = _scratch["images"];
        if (rootThroughLink)
        {
            Directory.CreateDirectory(_scratch["real-images"]);
            Directory.CreateSymbolicLink(ImageRoot, _scratch["real-images"]);
        }
        else
        {
            Directory.CreateDirectory(ImageRoot);
        }
    }

    /// <summary>Gets the image root the service stores into.</summary>
    public string ImageRoot { get; }

    /// <summary>Gets the service's own folder of uploads in flight.</summary>
    public string IncomingRoot => ImageRoot + ".state/incoming";

    /// <summary>Gets a scratch folder for the test's own files (outside the image root).</summary>
    public string WorkDirectory => _scratch.Path;

    /// <summary>Gets a client for the service.</summary>
    public abstract HttpClient Client { get; }

    /// <summary>Gets whether clients reach the service over a real socket (so raw-socket clients can be used).</summary>
    public abstract Uri? SocketAddress { get; }

    public virtual void Dispose()
    {
        _scratch.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The sample hosted in process by <see cref="WebApplicationFactory{TEntryPoint}"/>.</summary>
public sealed class InProcessGateHost : GateHost
{
    private readonly WebApplicationFactory<Program> _factory;

    public InProcessGateHost(bool rootThroughLink = false)
        : base(rootThroughLink)
    {
        _factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder => builder.UseSetting("ImageRoot", ImageRoot));
        Client = _factory.CreateClient();
    }

    public override HttpClient Client { get; }

    public override Uri? SocketAddress => null;

    public override void Dispose()
    {
        Client.Dispose();
        _factory.Dispose();
        base.Dispose();
    }
}

/// <summary>
/// The sample as its README runs it — <c>--urls http://127.0.0.1:PORT --ImageRoot DIR</c> — in its own process on a
/// free loopback port, reached over a real socket.
/// </summary>
public sealed class SocketGateHost : GateHost
{
    private readonly Process _process;

    public SocketGateHost()
    {
        int port = FreePort();
        SocketAddress = new Uri($"http://127.0.0.1:{port}/");
        string sample = Path.Combine(AppContext.BaseDirectory, "ProvisioningGate.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[] { sample, "--urls", SocketAddress.ToString().TrimEnd('/'), "--ImageRoot", ImageRoot })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        _process = Process.Start(start)!;
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginErrorReadLine();
        WaitUntilListening();
        Client = new HttpClient { BaseAddress = SocketAddress };
    }

    public override HttpClient Client { get; }

    public override Uri? SocketAddress { get; }

    /// <summary>The most resident memory the sample's process has used so far (Linux's VmHWM), in bytes.</summary>
    public long PeakResidentBytes()
    {
        foreach (string line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException("no VmHWM in /proc/PID/status");
    }

    public override void Dispose()
    {
        Client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
        base.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Kestrel says "Now listening on" once the port is bound; anything else ending the output is a failed start.</summary>
    private void WaitUntilListening()
    {
        using var giveUp = new CancellationTokenSource(TimeSpan.FromMinutes(2)); // only so a broken start cannot hang the run
        while (!giveUp.IsCancellationRequested)
        {
            string? line = _process.StandardOutput.ReadLineAsync(giveUp.Token).AsTask().GetAwaiter().GetResult();
            if (line is null)
            {
                throw new InvalidOperationException($"The sample exited before listening (exit code {(_process.HasExited ? _process.ExitCode : -1)}).");
            }

            if (line.Contains("Now listening on", StringComparison.Ordinal))
            {
                // Keep draining its output so the sample never blocks on a full pipe.
                StreamReader output = _process.StandardOutput;
                _ = Task.Run(async () =>
                {
                    while (await output.ReadLineAsync().ConfigureAwait(false) is not null)
                    {
                    }
                });
                return;
            }
        }

        throw new TimeoutException("The sample did not start listening.");
    }
}
