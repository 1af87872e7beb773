using System;
using System.Net.Http;

namespace BackingChain.Cli;

/// <summary>
/// The one HTTP client of the process, made only when a URL is read. It keeps no cookies: a cookie one server sets
/// would otherwise be sent to every other server of the chain, and a header may name any server.
/// </summary>
internal static class Http
{
    private static readonly Lazy<HttpClient> Shared = new(() =>
        new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, ConnectTimeout = TimeSpan.FromSeconds(10) })
        {
            Timeout = TimeSpan.FromSeconds(30),
        });

    public static HttpClient Client => Shared.Value;
}
