using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// A small HTTP/1.1 server on 127.0.0.1 that serves files held in memory with byte ranges and a strong ETag, as
/// nginx does, but can wait before each answer (<see cref="Delay"/>), add headers of its own
/// (<see cref="ExtraHeaders"/>, e.g. <c>Set-Cookie</c>) and keeps every request's headers (<see cref="Requests"/>).
/// Connections are kept alive; each is served on its own task.
/// </summary>
internal sealed class RangeServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private readonly List<Task> _connections = [];
    private readonly Task _accept;

    public RangeServer()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = Task.Run(AcceptAsync);
    }

    public int Port { get; }

    /// <summary>How long to wait before each answer.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Header lines added to every answer (without the line end).</summary>
    public List<string> ExtraHeaders { get; } = [];

    /// <summary>Every request's header block, in arrival order.</summary>
    public ConcurrentQueue<string> Requests { get; } = new();

    public string Url(string path) => $"http://127.0.0.1:{Port}/{path}";

    public void Add(string path, byte[] content) => _files["/" + path] = content;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accept;
            Task[] connections;
            lock (_connections)
            {
                connections = [.. _connections];
            }

            await Task.WhenAll(connections).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException or OperationCanceledException or TimeoutException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            lock (_connections)
            {
                _connections.Add(Task.Run(() => ServeAsync(client)));
            }
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                NetworkStream stream = client.GetStream();
                while (!_stop.IsCancellationRequested)
                {
                    string? request = await ReadHeadersAsync(stream, _stop.Token);
                    if (request is null)
                    {
                        return;
                    }

                    Requests.Enqueue(request);
                    if (Delay > TimeSpan.Zero)
                    {
                        await Task.Delay(Delay, _stop.Token);
                    }

                    await AnswerAsync(stream, request, _stop.Token);
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The client hung up, or the server is stopping.
            }
        }
    }

    private async Task AnswerAsync(NetworkStream stream, string request, CancellationToken cancellationToken)
    {
        string[] lines = request.Split("\r\n");
        string path = lines[0].Split(' ')[1];
        var head = new StringBuilder();
        byte[] body = [];
        if (!_files.TryGetValue(path, out byte[]? file))
        {
            head.Append("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n");
        }
        else
        {
            (long from, long to) = (0, file.Length - 1);
            foreach (string line in lines)
            {
                if (line.StartsWith("Range: bytes=", StringComparison.OrdinalIgnoreCase))
                {
                    string[] parts = line["Range: bytes=".Length..].Split('-');
                    from = long.Parse(parts[0], CultureInfo.InvariantCulture);
                    to = Math.Min(long.Parse(parts[1], CultureInfo.InvariantCulture), file.Length - 1);
                }
            }

            body = file.AsSpan((int)from, (int)(to - from + 1)).ToArray();
            head.Append(CultureInfo.InvariantCulture, $"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{to}/{file.Length}\r\nContent-Length: {body.Length}\r\nETag: \"v1\"\r\n");
        }

        foreach (string extra in ExtraHeaders)
        {
            head.Append(extra).Append("\r\n");
        }

        head.Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), cancellationToken);
        await stream.WriteAsync(body, cancellationToken);
    }

    private static async Task<string?> ReadHeadersAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        byte[] one = new byte[1];
        while (await stream.ReadAsync(one, cancellationToken) == 1)
        {
            text.Append((char)one[0]);
            if (text.Length >= 4 && text[^1] == '\n' && text[^2] == '\r' && text[^3] == '\n' && text[^4] == '\r')
            {
                return text.ToString();
            }
        }

        return null;
    }
}
