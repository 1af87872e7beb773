using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// A <c>qemu-nbd</c> exporting one file as it is (<c>-f raw</c>, read-only, several clients at once), on a TCP port of
/// 127.0.0.1 or on a Unix socket; killed on dispose. qemu's own NBD server: what the NBD source is tested against.
/// </summary>
internal sealed class QemuNbd : IDisposable
{
    private readonly Process _process;

    private QemuNbd(Process process, string url)
    {
        _process = process;
        Url = url;
    }

    /// <summary>The export's URL, as qemu spells it.</summary>
    public string Url { get; }

    public static bool IsAvailable => QemuImg.IsAvailable && File.Exists("/usr/bin/qemu-nbd");

    /// <summary>Exports <paramref name="file"/> as <paramref name="export"/> on a free TCP port, or on <paramref name="socket"/> when given.</summary>
    public static QemuNbd Export(string file, string export, string? socket = null)
    {
        int port = 0;
        string where;
        if (socket is null)
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            where = $"-b 127.0.0.1 -p {port}";
        }
        else
        {
            where = $"-k {socket}";
        }

        var start = new ProcessStartInfo("qemu-nbd", $"-f raw -r -t -e 8 -x {export} {where} {file}")
        {
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process = Process.Start(start)!;
        string url = socket is null ? $"nbd://127.0.0.1:{port}/{export}" : $"nbd+unix:///{export}?socket={socket}";
        for (int waited = 0; waited < 100; waited++)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"qemu-nbd exited: {process.StandardError.ReadToEnd()}");
            }

            if (Listening(socket, port))
            {
                return new QemuNbd(process, url);
            }

            Thread.Sleep(50);
        }

        process.Kill();
        throw new InvalidOperationException("qemu-nbd did not start listening within 5 s");
    }

    private static bool Listening(string? socket, int port)
    {
        try
        {
            using var client = socket is null
                ? new Socket(SocketType.Stream, ProtocolType.Tcp)
                : new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            client.Connect(socket is null ? new IPEndPoint(IPAddress.Loopback, port) : new UnixDomainSocketEndPoint(socket));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        try
        {
            _process.Kill();
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }
}

/// <summary>A fact that needs qemu-img and qemu-nbd (both in Debian's qemu-utils).</summary>
internal sealed class QemuNbdFactAttribute : FactAttribute
{
    public QemuNbdFactAttribute()
    {
        if (!QemuNbd.IsAvailable)
        {
            Skip = "qemu-nbd is not installed (apt-get install qemu-utils); .ci/run installs it";
        }
    }
}
