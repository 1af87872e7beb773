using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// Debian's nginx serving a scratch folder on 127.0.0.1, started in the foreground as a child process with its own
/// configuration, pid file, logs and temporary directories (never the system's), and killed when disposed.
/// </summary>
/// <remarks>
/// Locations besides the plain files under <see cref="Root"/>: <c>/norange/</c> ignores byte ranges
/// (<c>max_ranges 0</c>, so every answer is 200 with the whole file); redirects: <c>/moved/X</c> to
/// <c>http://127.0.0.2:PORT/images/X</c> (another host, served by the same nginx), <c>/hop/X</c> to
/// <c>/images/X</c>, <c>/hop2/X</c> to <c>/hop/X</c> (two redirects) and <c>/loop/X</c> to itself.
/// </remarks>
internal sealed class Nginx : IDisposable
{
    private static readonly Lazy<string?> Location = new(() =>
    {
        foreach (string dir in ((Environment.GetEnvironmentVariable("PATH") ?? "") + ":/usr/sbin:/sbin").Split(':'))
        {
            string candidate = System.IO.Path.Combine(dir, "nginx");
            if (dir.Length > 0 && File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    });

    private readonly ScratchDirectory _scratch = new();
    private readonly Process _process;

    public Nginx()
    {
        string nginx = Location.Value ?? throw new InvalidOperationException(MissingReason);
        Root = _scratch["www"];
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(_scratch["temp"]);
        Port = FreePort();

        // As root, workers would drop to "nobody" and could not read a scratch folder; as anyone else the directive
        // is ignored. Either way nginx runs as the user running the tests.
        string user = Environment.UserName == "root" ? "user root;" : "";
        string temp = _scratch["temp"];
        File.WriteAllText(_scratch["nginx.conf"], $$"""
            {{user}}
            daemon off;
            worker_processes 1;
            pid {{_scratch["nginx.pid"]}};
            error_log {{_scratch["error.log"]}} info;
            events { worker_connections 64; }
            http {
                access_log {{AccessLogPath}};
                client_body_temp_path {{temp}}/body;
                proxy_temp_path {{temp}}/proxy;
                fastcgi_temp_path {{temp}}/fastcgi;
                uwsgi_temp_path {{temp}}/uwsgi;
                scgi_temp_path {{temp}}/scgi;
                server {
                    listen 127.0.0.1:{{Port}};
                    listen 127.0.0.2:{{Port}};
                    root {{Root}};
                    location /norange/ { max_ranges 0; }
                    location /moved/ { rewrite ^/moved/(.*)$ http://127.0.0.2:{{Port}}/images/$1 redirect; }
                    location ~ ^/hop/(.*)$ { return 302 http://127.0.0.1:{{Port}}/images/$1; }
                    location ~ ^/hop2/(.*)$ { return 307 /hop/$1; }
                    location ~ ^/loop/(.*)$ { return 302 /loop/$1; }
                }
            }
            """);

        var start = new ProcessStartInfo(nginx)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[] { "-p", _scratch.Path, "-c", _scratch["nginx.conf"], "-e", _scratch["error.log"] })
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start)!;
        WaitUntilListening();
    }

    /// <summary>Whether nginx is installed.</summary>
    public static bool IsAvailable => Location.Value is not null;

    /// <summary>The reason tests that need nginx are skipped, shown in the test report.</summary>
    public const string MissingReason = "nginx is not installed (apt-get install nginx); .ci/run installs it";

    /// <summary>The folder served at <c>/</c>.</summary>
    public string Root { get; }

    public int Port { get; }

    public string AccessLogPath => _scratch["access.log"];

    /// <summary>The URL of a path under the root, e.g. <c>Url("images/top.qcow2")</c>.</summary>
    public string Url(string path) => $"http://127.0.0.1:{Port}/{path}";

    /// <summary>The same path on the other host nginx answers as: <c>127.0.0.2</c>.</summary>
    public string OtherHostUrl(string path) => $"http://127.0.0.2:{Port}/{path}";

    /// <summary>A folder under the root, made if needed.</summary>
    public string Folder(string relative)
    {
        string path = System.IO.Path.Combine(Root, relative);
        Directory.CreateDirectory(path);
        return path;
    }

    public string AccessLog() => File.Exists(AccessLogPath) ? File.ReadAllText(AccessLogPath) : "";

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        finally
        {
            _process.Dispose();
            _scratch.Dispose();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void WaitUntilListening()
    {
        // A hang guard, not a timing assertion: nginx listens within milliseconds.
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"nginx exited ({_process.ExitCode}): {_process.StandardError.ReadToEnd()} {ReadErrorLog()}");
            }

            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(20);
            }
        }

        Dispose();
        throw new InvalidOperationException($"nginx did not listen on {Port}: {ReadErrorLog()}");
    }

    private string ReadErrorLog() => File.Exists(_scratch["error.log"]) ? File.ReadAllText(_scratch["error.log"]) : "";
}

/// <summary>A fact that needs nginx: skipped, with the reason shown, where it is absent.</summary>
internal sealed class NginxFactAttribute : FactAttribute
{
    public NginxFactAttribute()
    {
        if (!Nginx.IsAvailable)
        {
            Skip = Nginx.MissingReason;
        }
    }
}

/// <summary>A fact that needs nginx and qemu-img with its curl driver (Debian's qemu-block-extra).</summary>
internal sealed class NginxQemuFactAttribute : FactAttribute
{
    public NginxQemuFactAttribute()
    {
        if (!Nginx.IsAvailable)
        {
            Skip = Nginx.MissingReason;
        }
        else if (!QemuImg.IsAvailable)
        {
            Skip = QemuImg.MissingReason;
        }
        else if (!HasCurlDriver())
        {
            Skip = "qemu-img has no curl driver (apt-get install qemu-block-extra); .ci/run installs it";
        }
    }

    private static bool HasCurlDriver()
    {
        foreach (string lib in new[] { "/usr/lib/x86_64-linux-gnu/qemu", "/usr/lib/aarch64-linux-gnu/qemu", "/usr/lib/qemu", "/usr/lib64/qemu" })
        {
            if (File.Exists(System.IO.Path.Combine(lib, "block-curl.so")))
            {
                return true;
            }
        }

        return false;
    }
}
