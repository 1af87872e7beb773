using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Trust;

namespace BackingChain.Sources;

/// <summary>
/// The image sources and source providers the library ships: local files, http(s) URLs and images held in memory.
/// Implement <see cref="IImageSource"/> and <see cref="IImageSourceProvider"/> for any other storage.
/// </summary>
/// <remarks>
/// The concrete types stay private to the library so they can change; every source returned here is used through
/// <see cref="IImageSource"/> and disposed by its caller.
/// </remarks>
public static class ImageSources
{
    /// <summary>
    /// Opens a local file for positional reads (no stream, no shared cursor). Only regular files and block devices are
    /// opened: a FIFO or a character device named by a hostile reference must not block or feed endless data. Reads
    /// complete synchronously.
    /// </summary>
    /// <param name="path">The file's path; a relative path is relative to the working directory, as in qemu.</param>
    /// <returns>The source.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="IOException">The file cannot be opened, or is not a regular file or block device.</exception>
    /// <exception cref="UnauthorizedAccessException">The file may not be read.</exception>
    public static IImageSource OpenFile(string path) => FileImageSource.Open(path);

    /// <summary>Wraps bytes held in memory as an image, for tests and for embedding.</summary>
    /// <param name="name">The image's name; also its identity, so give each image its own name.</param>
    /// <param name="data">The image's bytes.</param>
    /// <returns>The source.</returns>
    public static IImageSource FromMemory(string name, ReadOnlyMemory<byte> data) => new MemoryImageSource(name, data);

    /// <summary>
    /// Opens an image over http(s) with byte-range requests, as qemu's curl driver reads one: by its URL
    /// (<c>http://…</c>, <c>https://…</c>) or by qemu's <c>json:</c> spelling of one. The source is named by the URL.
    /// </summary>
    /// <remarks>
    /// <para>The first answer's validator (a strong <c>ETag</c>, else <c>Last-Modified</c>) is sent with every later
    /// range, so an image replaced between two reads fails with <see cref="ImageSourceChangedException"/> instead of
    /// yielding a header stitched from two files. A server that ignores <c>Range</c> is abandoned after the headers,
    /// so a large image is never downloaded by accident; a request that outlives the client's
    /// <see cref="HttpClient.Timeout"/> (which here also bounds each body) fails.</para>
    /// <para>Redirects (301, 302, 303, 307, 308) are followed only when <paramref name="policy"/> is given, only while
    /// the image is opened, only to a target the policy would let be read had the image named it itself (under one of
    /// <see cref="TrustPolicy.TrustedUrlPrefixes"/>, by its callback, or anywhere when it
    /// <see cref="TrustPolicy.FollowUntrustedReferences">follows untrusted references</see> as qemu-img does), at most
    /// five, never from https to plain http. The URL they lead to is the one read and pinned; it is the key of the
    /// source's <see cref="IImageSource.Identity"/>. A redirect met while reading is an error, so the bytes of one
    /// image never come from two places.</para>
    /// <para>The client is the caller's (for example from <c>IHttpClientFactory</c>) and is not disposed. Give it a
    /// handler with automatic redirects turned off; a redirect the handler follows by itself is refused, as its target
    /// was never judged.</para>
    /// </remarks>
    /// <param name="client">The client to send requests with.</param>
    /// <param name="url">The URL or <c>json:</c> name.</param>
    /// <param name="policy">The policy that says where a redirect may lead; <see langword="null"/> follows none.</param>
    /// <param name="cancellationToken">Cancels the requests.</param>
    /// <returns>The source.</returns>
    /// <exception cref="IOException">
    /// The image cannot be read over http as this library reads it, or a redirect leads where the policy does not
    /// allow (the message says why and names the target).
    /// </exception>
    /// <exception cref="FileNotFoundException">The server answered 404 or 410.</exception>
    public static async Task<IImageSource> OpenUrlAsync(HttpClient client, string url, TrustPolicy? policy = null, CancellationToken cancellationToken = default) =>
        policy is null
            ? await HttpImageSource.OpenAsync(client, url, cancellationToken).ConfigureAwait(false)
            : await HttpImageSource.OpenAsync(client, url, policy, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Gets the provider of local files: it opens local POSIX paths (relative names are relative to the working
    /// directory, as in qemu) with <see cref="OpenFile"/>.
    /// </summary>
    public static IImageSourceProvider Files => FileImageSourceProvider.Instance;

    /// <summary>
    /// Makes a provider that opens http(s) references with <see cref="OpenUrlAsync"/>: plain URLs and qemu's
    /// <c>json:{"file.driver":"http(s)","file.url":…}</c> spelling of one. Add it to
    /// <see cref="Walk.ImageChainResolverOptions.SourceProviders"/> to follow such references; the resolver still asks the
    /// trust policy first, and a URL is trusted only under one of <see cref="TrustPolicy.TrustedUrlPrefixes"/> (or by
    /// the policy's callback). A redirect is a reference the server makes: it is followed only to a target the
    /// resolver's policy admits by the same rule, and otherwise the reference is refused with a finding naming the
    /// target.
    /// </summary>
    /// <param name="client">The client to send requests with; the caller keeps ownership.</param>
    /// <returns>The provider.</returns>
    public static IImageSourceProvider Http(HttpClient client) => new HttpImageSourceProvider(client);

    /// <summary>
    /// Makes a provider like <see cref="Http(HttpClient)"/> that takes a client from <paramref name="clientFactory"/>
    /// for each image it opens, for example <c>() =&gt; factory.CreateClient("BackingChain")</c> with
    /// <c>IHttpClientFactory</c>, whose handlers are pooled and renewed. The image keeps that client for its later
    /// reads; the provider never disposes it. Give the client a handler with automatic redirects turned off.
    /// </summary>
    /// <param name="clientFactory">Makes the client one image is read with.</param>
    /// <returns>The provider.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="clientFactory"/> is <see langword="null"/>.</exception>
    public static IImageSourceProvider Http(Func<HttpClient> clientFactory) => new HttpImageSourceProvider(clientFactory);

    /// <summary>Makes a provider that serves a fixed set of in-memory images by name: chains for tests and embedding.</summary>
    /// <param name="images">Image bytes keyed by the exact name a reference resolves to.</param>
    /// <returns>The provider.</returns>
    public static IImageSourceProvider Memory(IEnumerable<KeyValuePair<string, ReadOnlyMemory<byte>>> images) => new MemoryImageSourceProvider(images);
}
