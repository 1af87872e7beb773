using System;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Internal;
using BackingChain.Trust;

namespace BackingChain.Sources;

/// <summary>
/// An image read over http(s) with byte-range requests, as qemu's curl driver reads one. The first request learns
/// the image's length and its validator (a strong <c>ETag</c>, else <c>Last-Modified</c>); every later range is
/// conditional on that validator, so an image replaced between two reads fails with
/// <see cref="ImageSourceChangedException"/> instead of yielding a header stitched from two files.
/// </summary>
/// <remarks>
/// <para>Every failure is an <see cref="IOException"/> with a one-line message (the resolver turns it into a
/// finding): a server that ignores <c>Range</c> (its answer is abandoned after the headers, so a large image is
/// never downloaded by accident), a redirect that is not followed (see below), a short or failed read, and a request
/// that outlives the client's <see cref="HttpClient.Timeout"/> (which here also bounds reading the body). A 404 is a
/// <see cref="FileNotFoundException"/>, so the image counts as missing.</para>
/// <para>Redirects (301, 302, 303, 307, 308) are followed only while the image is opened, only when a trust policy
/// is given (directly, or by the resolver that opens a reference), and only to a target that policy would let be
/// read had the image named it itself: at most five of them, never from https to plain http. The URL they lead to
/// is judged, read and pinned by the validator (<see cref="Url"/>); a redirect met while reading is an error, so the
/// bytes of one image never come from two places.</para>
/// <para>The <see cref="HttpClient"/> is the caller's (for example from <c>IHttpClientFactory</c>) and is not
/// disposed. Give it a handler with automatic redirects turned off; a redirect a handler follows by itself is
/// detected and refused, as its target was never judged.</para>
/// </remarks>
internal sealed class HttpImageSource : IImageSource, IKnownImageSource
{
    /// <summary>The most redirects followed for one image; a longer chain of them is an error, so a loop ends.</summary>
    internal const int MaxRedirects = 5;

    private readonly HttpClient _client;
    private readonly Uri _uri;
    private readonly EntityTagHeaderValue? _etag;
    private readonly DateTimeOffset? _lastModified;

    private HttpImageSource(HttpClient client, string name, Uri uri, string normalized, long length, EntityTagHeaderValue? etag, DateTimeOffset? lastModified, TrustBasis? redirectBasis)
    {
        _client = client;
        _uri = uri;
        _etag = etag;
        _lastModified = lastModified;
        Name = name;
        Url = normalized;
        Length = length;
        RedirectBasis = redirectBasis;
        Identity = ImageSourceIdentity.ForKey("http", normalized);
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public long Length { get; }

    /// <summary>Gets <see langword="null"/>: a web server does not say how much storage a file occupies (qemu omits <c>actual-size</c> for http too).</summary>
    public long? AllocatedSize => null;

    /// <summary>
    /// Gets the identity: the normalised URL read, so two spellings of one URL, or two URLs redirected to the same
    /// place, are one image.
    /// </summary>
    public ImageSourceIdentity Identity { get; }

    /// <summary>Gets the URL the bytes are read from, in normal form: the name's URL, or where its redirects led.</summary>
    public string Url { get; }

    /// <summary>
    /// Gets why the redirects followed to <see cref="Url"/> were allowed (the weakest reason when there were several),
    /// or <see langword="null"/> when the server did not redirect.
    /// </summary>
    internal TrustBasis? RedirectBasis { get; }

    /// <inheritdoc/>
    bool IKnownImageSource.ReadsSynchronously => false;

    /// <inheritdoc/>
    long? IKnownImageSource.ChangeStamp => null;

    /// <inheritdoc/>
    bool IKnownImageSource.IsDevice => false;

    /// <inheritdoc/>
    bool IKnownImageSource.ProtocolAnswersGetInfo => false;

    /// <inheritdoc/>
    int IKnownImageSource.ReadAt(long offset, Span<byte> buffer) => throw new NotSupportedException("An http source is read asynchronously.");

    /// <summary>
    /// Opens an image by its URL (<c>http://…</c>, <c>https://…</c>) or by qemu's <c>json:</c> spelling of one
    /// (<c>json:{"file.driver":"https","file.url":"…"}</c>); the source is named by the URL, as qemu names it.
    /// A redirect is not followed: no policy says where it may lead.
    /// </summary>
    /// <param name="client">The client to send requests with; the caller keeps ownership.</param>
    /// <param name="name">The URL or <c>json:</c> name.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The source.</returns>
    /// <exception cref="IOException">The image cannot be read over http as this class reads it (the message says why).</exception>
    /// <exception cref="FileNotFoundException">The server answered 404 or 410.</exception>
    public static Task<HttpImageSource> OpenAsync(HttpClient client, string name, CancellationToken cancellationToken = default) =>
        OpenAsync(client, name, redirectGate: null, cancellationToken);

    /// <summary>
    /// Opens an image by its URL or <c>json:</c> name, following redirects to targets under one of the policy's
    /// <see cref="TrustPolicy.TrustedUrlPrefixes"/> (or to any target when the policy
    /// <see cref="TrustPolicy.FollowUntrustedReferences">follows untrusted references</see>, as qemu-img does).
    /// </summary>
    /// <param name="client">The client to send requests with; the caller keeps ownership.</param>
    /// <param name="name">The URL or <c>json:</c> name.</param>
    /// <param name="policy">The policy that says where a redirect may lead.</param>
    /// <param name="cancellationToken">Cancels the requests.</param>
    /// <returns>The source; <see cref="Url"/> says where it is read from.</returns>
    /// <exception cref="IOException">
    /// The image cannot be read over http as this class reads it, or a redirect leads where the policy does not allow,
    /// to plain http from https, or too many times (the message says why and names the target).
    /// </exception>
    /// <exception cref="FileNotFoundException">The server answered 404 or 410.</exception>
    public static Task<HttpImageSource> OpenAsync(HttpClient client, string name, TrustPolicy policy, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return OpenAsync(client, name, HttpRedirects.Gate(policy, FormatSource.Declared, reference: null), cancellationToken);
    }

    /// <summary>Opens the image; <paramref name="redirectGate"/> says, for a target in normal form, why it may be read (or <see cref="TrustBasis.None"/>).</summary>
    internal static async Task<HttpImageSource> OpenAsync(HttpClient client, string name, Func<string, TrustBasis>? redirectGate, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(name);
        if (!HttpReferences.TryGetUrl(name, out string url))
        {
            throw new IOException("the name is not an http(s) URL");
        }

        if (!HttpUrl.TryNormalize(url, out string normalized, out string? error))
        {
            throw new IOException(error);
        }

        TrustBasis? redirectBasis = null;
        for (int redirects = 0; ; redirects++)
        {
            var uri = new Uri(normalized, UriKind.Absolute);
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);

            // One byte: enough to learn the length (Content-Range) and the validator, and to see whether ranges work.
            request.Headers.Range = new RangeHeaderValue(0, 0);
            using HttpResponseMessage response = await SendAsync(client, request, uri, allowRedirect: redirectGate is not null, cancellationToken).ConfigureAwait(false);
            if (!IsRedirect(response))
            {
                return FromFirstResponse(client, url, uri, normalized, response, redirectBasis);
            }

            string target = NextTarget(response, normalized, redirects);
            TrustBasis basis = redirectGate!(target);
            if (basis == TrustBasis.None)
            {
                throw new HttpRedirectRefusedException(target);
            }

            redirectBasis = redirectBasis is { } earlier ? HttpRedirects.Weaker(earlier, basis) : basis;
            normalized = target;
        }
    }

    private static HttpImageSource FromFirstResponse(HttpClient client, string url, Uri uri, string normalized, HttpResponseMessage response, TrustBasis? redirectBasis)
    {

        long length;
        if (response.StatusCode == HttpStatusCode.PartialContent)
        {
            length = response.Content.Headers.ContentRange is { HasLength: true, Length: long total, Unit: "bytes", From: 0 } ? total
                : throw new IOException("the server answered a byte range without a usable Content-Range");
        }
        else if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable
            && response.Content.Headers.ContentRange is { HasLength: true, Length: 0 })
        {
            // An empty file has no byte 0 to send.
            length = 0;
        }
        else
        {
            throw Unexpected(response);
        }

        EntityTagHeaderValue? etag = response.Headers.ETag is { IsWeak: false } strong ? strong : null;
        DateTimeOffset? lastModified = etag is null ? response.Content.Headers.LastModified : null;
        if (etag is null && lastModified is null)
        {
            throw new IOException("the server sends neither a strong ETag nor Last-Modified, so reads of the image cannot be kept consistent");
        }

        return new HttpImageSource(client, url, uri, normalized, length, etag, lastModified, redirectBasis);
    }

    private static bool IsRedirect(HttpResponseMessage response) => response.StatusCode is HttpStatusCode.MovedPermanently
        or HttpStatusCode.Found or HttpStatusCode.SeeOther or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    /// <summary>
    /// Where a redirect leads, in normal form, or why it is not followed. The target is what will be judged and then
    /// asked for, byte for byte, so a spelling the normaliser refuses is refused here too.
    /// </summary>
    private static string NextTarget(HttpResponseMessage response, string current, int redirects)
    {
        string? location = response.Headers.TryGetValues("Location", out var values) ? string.Join(",", values) : null;
        if (string.IsNullOrEmpty(location))
        {
            throw new IOException($"the server redirected without a Location ({(int)response.StatusCode})");
        }

        // An absolute Location is judged as the server wrote it; a relative one is resolved against the URL asked for.
        string absolute = location.Contains("://", StringComparison.Ordinal) ? location
            : Uri.TryCreate(new Uri(current, UriKind.Absolute), location, out Uri? combined) ? combined.AbsoluteUri
            : throw new IOException($"the server redirected to '{OneLine(location)}', which is not a URL");
        if (!HttpUrl.TryNormalize(absolute, out string target, out string? error))
        {
            throw new IOException($"the server redirected to '{OneLine(location)}', which is not followed: {error}");
        }

        if (current.StartsWith("https://", StringComparison.Ordinal) && !target.StartsWith("https://", StringComparison.Ordinal))
        {
            throw new IOException($"the server redirected from https to plain http ('{target}'); that is not followed");
        }

        if (redirects >= MaxRedirects)
        {
            throw new IOException(string.Create(CultureInfo.InvariantCulture, $"the server redirected more than {MaxRedirects} times (last to '{target}')"));
        }

        return target;
    }

    /// <inheritdoc/>
    /// <exception cref="ImageSourceChangedException">The image is no longer the one the first request saw.</exception>
    /// <exception cref="IOException">The server failed, timed out, sent fewer bytes than it announced, or ignored the range.</exception>
    public async ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset >= Length || buffer.IsEmpty)
        {
            return 0;
        }

        int count = (int)Math.Min(buffer.Length, Length - offset);
        long last = offset + count - 1;
        using CancellationTokenSource timeout = CreateTimeout(_client, cancellationToken);
        using HttpResponseMessage response = await SendRangeAsync(offset, last, timeout.Token, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            throw new ImageSourceChangedException("the image changed on the server while it was being read (its validator no longer matches)");
        }

        if (response.StatusCode == HttpStatusCode.OK && !SameValidator(response))
        {
            throw new ImageSourceChangedException("the image changed on the server while it was being read (the server sent a different version)");
        }

        if (response.StatusCode != HttpStatusCode.PartialContent)
        {
            throw Unexpected(response);
        }

        if (!SameValidator(response))
        {
            throw new ImageSourceChangedException("the image changed on the server while it was being read (the range came from a different version)");
        }

        if (response.Content.Headers.ContentRange is not { Unit: "bytes", From: long from, To: long to } range
            || from != offset || to < from || to > last)
        {
            throw new IOException(string.Create(CultureInfo.InvariantCulture, $"the server answered bytes {offset}-{last} with another range"));
        }

        if (range.HasLength && range.Length != Length)
        {
            throw new ImageSourceChangedException(string.Create(CultureInfo.InvariantCulture, $"the image changed on the server while it was being read (its length went from {Length} to {range.Length})"));
        }

        int expected = checked((int)(to - from + 1));
        int total = 0;
        try
        {
            Stream body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                // Never more than the range asked for, whatever the server sends after it.
                while (total < expected)
                {
                    int read = await body.ReadAsync(buffer[total..expected], timeout.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    total += read;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw TimedOut(_client);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            throw new IOException(string.Create(CultureInfo.InvariantCulture, $"the connection failed after {total} of {expected} bytes ({Internal.ErrorWords.Describe(ex)})"), ex);
        }

        if (total < expected)
        {
            throw new IOException(string.Create(CultureInfo.InvariantCulture, $"the server sent only {total} of {expected} bytes"));
        }

        return total;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        // The client is the caller's; every response is disposed when its read ends.
    }

    /// <inheritdoc/>
    public override string ToString() => Name;

    private bool SameValidator(HttpResponseMessage response)
    {
        if (_etag is not null)
        {
            // A response without an ETag says nothing against ours; one with another ETag is another file.
            return response.Headers.ETag is not { } etag || (!etag.IsWeak && etag.Tag == _etag.Tag);
        }

        return response.Content.Headers.LastModified is not { } modified || modified == _lastModified;
    }

    /// <summary>
    /// Sends one conditional range request. A request that failed before any response came back — typically a pooled
    /// connection the server closed or reset just after answering an earlier request (nginx does so after a 412) — is
    /// sent once more: a range GET is idempotent, and without the second try a dropped socket would be reported in
    /// place of the server's real answer. A second failure is the error.
    /// </summary>
    private async Task<HttpResponseMessage> SendRangeAsync(long offset, long last, CancellationToken token, CancellationToken callerToken)
    {
        for (int attempt = 0; ; attempt++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, _uri);
            request.Headers.Range = new RangeHeaderValue(offset, last);
            if (_etag is not null)
            {
                // If-Match turns a replaced file into 412; If-Range covers servers that ignore If-Match on ranges
                // (they then answer 200, which is refused without reading the body).
                request.Headers.IfMatch.Add(_etag);
                request.Headers.IfRange = new RangeConditionHeaderValue(_etag);
            }
            else
            {
                request.Headers.IfUnmodifiedSince = _lastModified;
                request.Headers.IfRange = new RangeConditionHeaderValue(_lastModified!.Value);
            }

            try
            {
                return await SendAsync(_client, request, _uri, allowRedirect: false, token, callerToken).ConfigureAwait(false);
            }
            catch (IOException ex) when (attempt == 0 && ex.InnerException is HttpRequestException)
            {
                // Once more, on a new connection; see the summary.
            }
        }
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpRequestMessage request, Uri uri, bool allowRedirect, CancellationToken cancellationToken)
    {
        using CancellationTokenSource timeout = CreateTimeout(client, cancellationToken);
        return await SendAsync(client, request, uri, allowRedirect, timeout.Token, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends a request and waits for the headers; a redirect is returned only when <paramref name="allowRedirect"/>, otherwise it is an error.</summary>
    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpRequestMessage request, Uri uri, bool allowRedirect, CancellationToken token, CancellationToken callerToken)
    {
        HttpResponseMessage response;
        try
        {
            // Headers only: the body is read by the caller, and only as far as the range asked for.
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!callerToken.IsCancellationRequested)
        {
            throw TimedOut(client);
        }
        catch (HttpRequestException ex)
        {
            throw new IOException($"the request failed ({Internal.ErrorWords.Describe(ex)})", ex);
        }

        // A handler that follows redirects by itself would have read another URL than the one judged.
        if (response.RequestMessage?.RequestUri is { } final && final != uri)
        {
            response.Dispose();
            throw new IOException($"the server redirected to '{final}'; redirects are not followed");
        }

        int status = (int)response.StatusCode;
        if (allowRedirect && IsRedirect(response))
        {
            return response;
        }

        if (status is >= 300 and < 400 && status != 304)
        {
            string target = response.Headers.Location?.ToString() ?? "(no Location)";
            response.Dispose();
            throw new IOException($"the server redirected to '{target}'; redirects are not followed");
        }

        return response;
    }

    private static CancellationTokenSource CreateTimeout(HttpClient client, CancellationToken cancellationToken)
    {
        // HttpClient.Timeout stops at the headers when the body is streamed; this bounds the body as well.
        var source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (client.Timeout != Timeout.InfiniteTimeSpan)
        {
            source.CancelAfter(client.Timeout);
        }

        return source;
    }

    private static IOException TimedOut(HttpClient client) =>
        new(string.Create(CultureInfo.InvariantCulture, $"the server did not answer within {client.Timeout.TotalSeconds:0.###} s"));

    private static IOException Unexpected(HttpResponseMessage response)
    {
        int status = (int)response.StatusCode;
        string text = string.Create(CultureInfo.InvariantCulture, $"{status} {response.ReasonPhrase}");
        return response.StatusCode switch
        {
            HttpStatusCode.OK => new IOException("the server does not honour byte ranges (it answered 200 with the whole image); the image is not downloaded"),
            HttpStatusCode.NotFound or HttpStatusCode.Gone => new FileNotFoundException($"No such file or directory (HTTP {text})"),
            _ => new IOException($"the server answered HTTP {text}"),
        };
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
