using System;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Trust;

namespace BackingChain.Sources;

/// <summary>
/// Opens http(s) references with <see cref="HttpImageSource"/>: plain <c>http://</c>/<c>https://</c> URLs and
/// qemu's <c>json:{"file.driver":"http(s)","file.url":…}</c> spelling of one. Add it to
/// <see cref="Walk.ImageChainResolverOptions.SourceProviders"/> to follow such references; the resolver still asks the
/// trust policy first, and a URL is trusted only under one of <see cref="Trust.TrustPolicy.TrustedUrlPrefixes"/>
/// (or by the policy's callback). A redirect is a reference the server makes: the resolver follows it only to a
/// target its policy admits by the same rule, and otherwise records the reference as refused, naming the target.
/// </summary>
internal sealed class HttpImageSourceProvider : IImageSourceProvider, IKnownSourceProvider
{
    private readonly Func<HttpClient> _client;

    /// <summary>Creates the provider.</summary>
    /// <param name="client">
    /// The client every request is sent with (for example from <c>IHttpClientFactory</c>); the caller keeps ownership.
    /// Its <see cref="HttpClient.Timeout"/> bounds each request, body included.
    /// </param>
    public HttpImageSourceProvider(HttpClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = () => client;
    }

    /// <summary>Creates a provider that asks <paramref name="clients"/> for a client each time it opens an image (an <c>IHttpClientFactory</c>'s named client, whose handlers the factory rotates).</summary>
    /// <param name="clients">Makes the client one image is read with; the provider never disposes it.</param>
    public HttpImageSourceProvider(Func<HttpClient> clients)
    {
        ArgumentNullException.ThrowIfNull(clients);
        _client = clients;
    }

    /// <inheritdoc/>
    public bool CanOpen(ImageReference reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return HttpReferences.TryGetUrl(reference, out _);
    }

    /// <inheritdoc/>
    /// <remarks>Opened this way, with no policy to judge a target, a redirect is not followed; the resolver opens through the overload that follows the ones its policy allows.</remarks>
    public async ValueTask<IImageSource> OpenAsync(string name, CancellationToken cancellationToken = default) =>
        await HttpImageSource.OpenAsync(Client(), name, cancellationToken).ConfigureAwait(false);

    /// <summary>Opens the image, following the redirects <paramref name="redirectGate"/> admits (see <see cref="HttpRedirects.Gate"/>).</summary>
    internal Task<HttpImageSource> OpenAsync(string name, Func<string, TrustBasis> redirectGate, CancellationToken cancellationToken) =>
        HttpImageSource.OpenAsync(Client(), name, redirectGate, cancellationToken);

    /// <inheritdoc/>
    public bool OpensLocalFiles => false;

    /// <inheritdoc/>
    /// <remarks>A redirect is the server naming another URL: the gate's rule judges it (<see cref="HttpRedirects.Gate"/>), and the URL read is returned.</remarks>
    public async ValueTask<AdmittedSource> OpenAdmittedAsync(string name, TrustPolicy policy, FormatSource referrer, ImageReference reference, CancellationToken cancellationToken)
    {
        HttpImageSource read = await OpenAsync(name, HttpRedirects.Gate(policy, referrer, reference), cancellationToken).ConfigureAwait(false);
        return new AdmittedSource(read, read.RedirectBasis, read.RedirectBasis is null ? null : read.Url);
    }

    private HttpClient Client() => _client() ?? throw new InvalidOperationException("The HTTP client factory of an image source provider returned null.");
}
