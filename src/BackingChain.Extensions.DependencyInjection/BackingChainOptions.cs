using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using BackingChain.Sources;
using BackingChain.Store;
using BackingChain.Streaming;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Hosting;

/// <summary>
/// The library's settings in the shape of the Options pattern: <c>IOptions&lt;BackingChainOptions&gt;</c>, filled from
/// the <c>BackingChain</c> configuration section by <see cref="BackingChainServiceCollectionExtensions.AddBackingChain"/>
/// and by any <c>services.Configure&lt;BackingChainOptions&gt;(…)</c>: plain mutable properties, lists for the trusted
/// roots and pins, the posture as text. Nothing is checked while they are set; the whole is validated once, when the
/// host starts (<c>ValidateOnStart</c>), and every failure names its setting (<c>BackingChain:TrustedRoots:0</c>).
/// </summary>
/// <remarks>
/// <para>Every entry point registered takes its settings from these, through one walk's settings: the resolver, the
/// upload gate, the store scanner and the domain reader walk with the same policy, depth cap, deadline and sources
/// (local files, and http(s) through the named client <see cref="HttpClientName"/> when a URL is trusted).</para>
/// <para>The defaults are a provisioning service's: the <see cref="TrustPosture.UntrustedImage"/> posture (an upload's
/// header is the uploader's), no trusted location, empty uploads refused. A configuration section looks like</para>
/// <code>
/// "BackingChain": {
///   "Posture": "untrusted-image",
///   "TrustedRoots": [ "/srv/images" ],
///   "PinnedImages": [ "SHA256=/srv/base/debian-12.raw" ],
///   "TrustedUrlPrefixes": [ "https://images.example/base/" ],
///   "MaxDepth": 200,
///   "Timeout": "00:02:00",
///   "HeadWindowLength": 4194304,
///   "TailWindowLength": 65536,
///   "AllowEmptyUpload": false
/// }
/// </code>
/// </remarks>
public sealed class BackingChainOptions
{
    /// <summary>The configuration section the library's settings are read from by default: <c>BackingChain</c>.</summary>
    public const string SectionName = "BackingChain";

    /// <summary>
    /// The name of the <c>IHttpClientFactory</c> client images are read over http(s) with: <c>BackingChain</c>.
    /// Registered with automatic redirects and cookies off (a redirect is judged by the policy, a cookie must not
    /// travel between the servers a chain names); configure it further with <c>services.AddHttpClient(BackingChainOptions.HttpClientName)</c>.
    /// </summary>
    public const string HttpClientName = "BackingChain";

    /// <summary>
    /// Gets or sets whose word an image's header is: <c>untrusted-image</c> (<see cref="TrustPosture.UntrustedImage"/>,
    /// the default, the upload gate's posture) or <c>host</c> (<see cref="TrustPosture.Host"/>). The names the
    /// JSON reports use and the enum's member names are both accepted, in any case; anything else fails validation.
    /// </summary>
    /// <remarks>Text, so that a wrong value is reported by validation naming the setting, not by the binder.</remarks>
    public string Posture { get; set; } = TrustPosture.UntrustedImage.GetStableName();

    /// <summary>Gets the directories whose files are trusted: absolute paths of directories that exist when the host starts (<see cref="TrustPolicy.TrustedRoots"/>).</summary>
    /// <remarks>A list, not an immutable array, because the configuration binder fills lists and leaves immutable arrays empty.</remarks>
    public List<string> TrustedRoots { get; } = [];

    /// <summary>
    /// Gets the pinned images, each written <c>SHA256=LOCATION</c>: 64 hexadecimal digits, <c>=</c>, an absolute path
    /// or an http(s) URL (<see cref="TrustPolicy.PinnedImages"/>, <see cref="ImagePin.Parse"/>).
    /// </summary>
    public List<string> PinnedImages { get; } = [];

    /// <summary>
    /// Gets the http(s) URL prefixes whose images are trusted (<see cref="TrustPolicy.TrustedUrlPrefixes"/>). When any is
    /// given (or a pin names a URL), the registered entry points read http(s) references through the named client
    /// <see cref="HttpClientName"/>; otherwise they open local files only.
    /// </summary>
    public List<string> TrustedUrlPrefixes { get; } = [];

    /// <summary>Gets or sets the largest file hashed to compare with a pin. Default 4 GiB.</summary>
    public long MaxDigestFileLength { get; set; } = new TrustPolicy().MaxDigestFileLength;

    /// <summary>Gets or sets the deepest chain walked, by every entry point. Default 200.</summary>
    public int MaxDepth { get; set; } = ImageChainResolverOptions.Default.MaxDepth;

    /// <summary>
    /// Gets or sets the deadline of one walk, by every entry point: a stored chain, what an upload names, each image
    /// of a scan, each disk of a domain (<see cref="ImageChainResolverOptions.Timeout"/>; configuration text such as
    /// <c>"00:00:30"</c>). Default two minutes.
    /// </summary>
    public TimeSpan Timeout { get; set; } = ImageChainResolverOptions.Default.Timeout;

    /// <summary>Gets or sets whether an upload stored in a regular file keeps its holes (<see cref="UploadInspectionOptions.SparseDestination"/>). Default <see langword="true"/>.</summary>
    public bool SparseDestination { get; set; } = true;

    /// <summary>Gets or sets the leading bytes of an upload kept for its header. Default 4 MiB.</summary>
    public int HeadWindowLength { get; set; } = UploadInspectionOptions.Default.HeadWindowLength;

    /// <summary>Gets or sets the trailing bytes of an upload kept for trailers. Default 64 KiB.</summary>
    public int TailWindowLength { get; set; } = UploadInspectionOptions.Default.TailWindowLength;

    /// <summary>Gets or sets whether the SHA-256 of every upload is computed as it streams past. Default <see langword="false"/>.</summary>
    public bool ComputeSha256 { get; set; }

    /// <summary>Gets or sets whether an upload of no bytes may be accepted. Default <see langword="false"/>: it is rejected (<see cref="TrustReason.EmptyUpload"/>).</summary>
    public bool AllowEmptyUpload { get; set; }

    /// <summary>Whether these settings need the http(s) source: a trusted URL prefix, or a pin on a URL.</summary>
    internal bool ReadsUrls
    {
        get
        {
            if (TrustedUrlPrefixes.Count > 0)
            {
                return true;
            }

            foreach (string pin in PinnedImages)
            {
                if (ImagePin.TryParse(pin, out ImagePin? parsed, out _) && parsed.Location.Contains("://", StringComparison.Ordinal))
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>Builds the trust policy these settings describe.</summary>
    /// <returns>An immutable policy.</returns>
    /// <exception cref="ArgumentException">A setting is invalid; the message names it.</exception>
    internal TrustPolicy BuildPolicy()
    {
        List<string> errors = BackingChainOptionsValidator.Errors(this, checkFileSystem: false);
        if (errors.Count > 0)
        {
            throw new ArgumentException(errors[0]);
        }

        return new TrustPolicy
        {
            Posture = ParsePosture(Posture)!.Value,
            TrustedRoots = [.. TrustedRoots],
            PinnedImages = [.. PinnedImages.ConvertAll(ImagePin.Parse)],
            TrustedUrlPrefixes = [.. TrustedUrlPrefixes],
            MaxDigestFileLength = MaxDigestFileLength,
        };
    }

    /// <summary>
    /// Builds the one walk's settings every entry point takes: the policy, the depth cap, the deadline, and
    /// <paramref name="sourceProviders"/> (local files when default).
    /// </summary>
    /// <exception cref="ArgumentException">A setting is invalid; the message names it.</exception>
    internal ImageChainResolverOptions BuildResolverOptions(ImmutableArray<IImageSourceProvider> sourceProviders = default) =>
        BuildResolverOptions(BuildPolicy(), sourceProviders);

    /// <summary>Builds the settings of the upload gate (<see cref="ImageUploadGate"/>), with the walk of <see cref="BuildResolverOptions(ImmutableArray{IImageSourceProvider})"/>.</summary>
    /// <exception cref="ArgumentException">A setting is invalid; the message names it.</exception>
    internal UploadInspectionOptions BuildUploadInspectionOptions() => BuildUploadInspectionOptions(BuildResolverOptions());

    internal ImageChainResolverOptions BuildResolverOptions(TrustPolicy policy, ImmutableArray<IImageSourceProvider> sourceProviders) => new()
    {
        Policy = policy,
        MaxDepth = MaxDepth,
        Timeout = Timeout,
        SourceProviders = sourceProviders.IsDefault ? ImageChainResolverOptions.Default.SourceProviders : sourceProviders,
    };

    internal UploadInspectionOptions BuildUploadInspectionOptions(ImageChainResolverOptions walk) => new(walk)
    {
        HeadWindowLength = HeadWindowLength,
        TailWindowLength = TailWindowLength,
        ComputeSha256 = ComputeSha256,
        AllowEmpty = AllowEmptyUpload,
        SparseDestination = SparseDestination,
    };

    internal static ImageStoreScannerOptions BuildScannerOptions(ImageChainResolverOptions walk) => new(walk);

    /// <summary>Reads a posture as reports and the enum spell it, in any case; <see langword="null"/> for anything else (numbers too: "1" says nothing about which posture was meant).</summary>
    internal static TrustPosture? ParsePosture(string? text)
    {
        string name = text?.Trim() ?? "";
        if (name.Equals("host", StringComparison.OrdinalIgnoreCase))
        {
            return TrustPosture.Host;
        }

        if (name.Equals("untrusted-image", StringComparison.OrdinalIgnoreCase) || name.Equals(nameof(TrustPosture.UntrustedImage), StringComparison.OrdinalIgnoreCase))
        {
            return TrustPosture.UntrustedImage;
        }

        return null;
    }
}
