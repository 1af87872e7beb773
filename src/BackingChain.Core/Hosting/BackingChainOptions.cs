using System;
using System.Collections.Generic;
using BackingChain.Streaming;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Hosting;

/// <summary>
/// The library's settings in a shape the configuration binder can fill
/// (<c>builder.Configuration.GetSection("BackingChain").Bind(options)</c>): plain mutable properties, lists for the
/// trusted roots and digests, the posture as text. Nothing is checked while binding; the <c>Build…</c>
/// methods check everything and make the immutable, validated settings the library uses.
/// </summary>
/// <remarks>
/// The defaults are a provisioning service's: the <see cref="TrustPosture.UntrustedImage"/> posture (an upload's
/// header is the uploader's), no trusted location, empty uploads refused. A configuration section looks like
/// <code>
/// "BackingChain": {
///   "Posture": "untrusted-image",
///   "TrustedRoots": [ "/srv/images" ],
///   "PinnedImages": [ "SHA256=/srv/base/debian-12.raw" ],
///   "TrustedUrlPrefixes": [ "https://images.example/base/" ],
///   "HeadWindowLength": 4194304,
///   "TailWindowLength": 65536,
///   "AllowEmptyUpload": false
/// }
/// </code>
/// </remarks>
public sealed class BackingChainOptions
{
    /// <summary>The configuration section the library's settings are conventionally kept in: <c>BackingChain</c>.</summary>
    public const string SectionName = "BackingChain";

    /// <summary>
    /// Gets or sets whose word an image's header is: <c>untrusted-image</c> (<see cref="TrustPosture.UntrustedImage"/>,
    /// the default and the upload gate's posture) or <c>host</c> (<see cref="TrustPosture.Host"/>). The names the
    /// JSON reports use and the enum's member names are both accepted, in any case; anything else is refused by the
    /// <c>Build…</c> methods.
    /// </summary>
    /// <remarks>
    /// Text rather than the enum because the configuration binder converts an enum by its member name only, so the
    /// spelling every report writes (<c>untrusted-image</c>) would fail to bind; parsing it here needs no reflection.
    /// </remarks>
    public string Posture { get; set; } = PostureName(TrustPosture.UntrustedImage);

    /// <summary>Gets the directories whose files are trusted: absolute paths of existing directories (<see cref="TrustPolicy.TrustedRoots"/>).</summary>
    /// <remarks>A list, not an immutable array, because the configuration binder fills lists and leaves immutable arrays empty.</remarks>
    public List<string> TrustedRoots { get; } = [];

    /// <summary>
    /// Gets the pinned images, each written <c>SHA256=LOCATION</c>: 64 hexadecimal digits, <c>=</c>, an absolute path
    /// or an http(s) URL (<see cref="TrustPolicy.PinnedImages"/>, <see cref="ImagePin.Parse"/>).
    /// </summary>
    public List<string> PinnedImages { get; } = [];

    /// <summary>Gets the http(s) URL prefixes whose images are trusted (<see cref="TrustPolicy.TrustedUrlPrefixes"/>).</summary>
    public List<string> TrustedUrlPrefixes { get; } = [];

    /// <summary>Gets or sets the largest file hashed to compare with a pin. Default 4 GiB.</summary>
    public long MaxDigestFileLength { get; set; } = TrustPolicy.DefaultMaxDigestFileLength;

    /// <summary>Gets or sets the deepest chain walked. Default 200.</summary>
    public int MaxDepth { get; set; } = ImageChainResolverOptions.DefaultMaxDepth;

    /// <summary>
    /// Gets or sets the deadline of one walk, for stored chains and for what an upload names
    /// (<see cref="ImageChainResolverOptions.Timeout"/>; configuration text such as <c>"00:00:30"</c>). Default two minutes.
    /// </summary>
    public TimeSpan Timeout { get; set; } = ImageChainResolverOptions.Default.Timeout;

    /// <summary>Gets or sets whether an upload stored in a regular file keeps its holes (<see cref="UploadInspectionOptions.SparseDestination"/>). Default <see langword="true"/>.</summary>
    public bool SparseDestination { get; set; } = true;

    /// <summary>Gets or sets the leading bytes of an upload kept for its header. Default 4 MiB.</summary>
    public int HeadWindowLength { get; set; } = UploadInspectionOptions.DefaultHeadWindowLength;

    /// <summary>Gets or sets the trailing bytes of an upload kept for trailers. Default 64 KiB.</summary>
    public int TailWindowLength { get; set; } = UploadInspectionOptions.DefaultTailWindowLength;

    /// <summary>Gets or sets whether the SHA-256 of every upload is computed as it streams past. Default <see langword="false"/>.</summary>
    public bool ComputeSha256 { get; set; }

    /// <summary>Gets or sets whether an upload of no bytes may be accepted. Default <see langword="false"/>: it is rejected (<see cref="TrustReason.EmptyUpload"/>).</summary>
    public bool AllowEmptyUpload { get; set; }

    /// <summary>Builds the trust policy these settings describe.</summary>
    /// <returns>A validated, immutable policy.</returns>
    /// <exception cref="ArgumentException">A setting is invalid; the message names it (for example a trusted root that is relative or missing).</exception>
    internal TrustPolicy BuildPolicy()
    {
        try
        {
            return new TrustPolicy
            {
                Posture = ParsePosture(Posture),
                TrustedRoots = [.. TrustedRoots],
                PinnedImages = [.. PinnedImages.ConvertAll(ImagePin.Parse)],
                TrustedUrlPrefixes = [.. TrustedUrlPrefixes],
                MaxDigestFileLength = MaxDigestFileLength,
            };
        }
        catch (ArgumentException e)
        {
            // The policy's own message says what is wrong; this one says which setting to fix.
            throw new ArgumentException($"{SectionName} settings: {e.Message}", e);
        }
    }

    /// <summary>The spelling reports use for a posture, the one written back into settings.</summary>
    internal static string PostureName(TrustPosture posture) => posture == TrustPosture.Host ? "host" : "untrusted-image";

    private static TrustPosture ParsePosture(string? text)
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

        // Numbers are refused too: a posture is a security choice, and "1" says nothing about which one was meant.
        throw new ArgumentException($"{nameof(Posture)} '{text}' is not a posture; use \"host\" or \"untrusted-image\".");
    }

    /// <summary>Builds the settings of the upload gate (<see cref="ImageUploadGate"/>).</summary>
    /// <returns>Validated, immutable settings, with the policy of <see cref="BuildPolicy"/>.</returns>
    /// <exception cref="ArgumentException">A setting is invalid; the message names it.</exception>
    internal UploadInspectionOptions BuildUploadInspectionOptions() => BuildUploadInspectionOptions(BuildPolicy());

    /// <summary>Builds the settings of a resolver that walks and judges stored chains under the same policy as uploads.</summary>
    /// <returns>Validated, immutable settings, with the policy of <see cref="BuildPolicy"/>.</returns>
    /// <exception cref="ArgumentException">A setting is invalid; the message names it.</exception>
    internal ImageChainResolverOptions BuildResolverOptions() => BuildResolverOptions(BuildPolicy());

    internal UploadInspectionOptions BuildUploadInspectionOptions(TrustPolicy policy)
    {
        try
        {
            // The walk's settings first: they are the resolver's too, and their errors name them the same way.
            ImageChainResolverOptions walk = BuildResolverOptions(policy);
            return new UploadInspectionOptions
            {
                Policy = policy,
                MaxDepth = walk.MaxDepth,
                Timeout = walk.Timeout,
                HeadWindowLength = HeadWindowLength,
                TailWindowLength = TailWindowLength,
                ComputeSha256 = ComputeSha256,
                AllowEmpty = AllowEmptyUpload,
                SparseDestination = SparseDestination,
            };
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentException($"{SectionName} settings: a window length is out of range ({nameof(HeadWindowLength)} {HeadWindowLength}, {nameof(TailWindowLength)} {TailWindowLength}): {e.Message}", e);
        }
    }

    internal ImageChainResolverOptions BuildResolverOptions(TrustPolicy policy)
    {
        // One setting at a time, so that the error names the one out of range.
        ImageChainResolverOptions depth;
        try
        {
            depth = new ImageChainResolverOptions { Policy = policy, MaxDepth = MaxDepth };
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentException($"{SectionName} settings: {nameof(MaxDepth)} {MaxDepth} is out of range: {e.Message}", e);
        }

        try
        {
            return new ImageChainResolverOptions { Policy = policy, MaxDepth = depth.MaxDepth, Timeout = Timeout };
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentException($"{SectionName} settings: {nameof(Timeout)} {Timeout} is out of range: {e.Message}", e);
        }
    }
}
