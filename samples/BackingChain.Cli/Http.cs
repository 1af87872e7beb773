using System;
using System.Net.Http;

namespace BackingChain.Cli;

/// <summary>The one HTTP client of the process, made only when a URL is read.</summary>
internal static class Http
{
    private static readonly Lazy<HttpClient> Shared = new(() =>
        new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(10) })
        {
            Timeout = TimeSpan.FromSeconds(30),
        });

    public static HttpClient Client => Shared.Value;
}
