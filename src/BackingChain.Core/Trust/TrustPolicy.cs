using System;
using System.Collections.Immutable;
using System.Globalization;
using System.IO;
using BackingChain.Chain;
using BackingChain.Internal;

namespace BackingChain.Trust;

/// <summary>
/// What may be opened and what is trusted: the posture, the trusted locations, the pinned digests. The policy is
/// given once, to <see cref="Walk.ImageChainResolver"/> or to the upload gate; the chain it walks records its posture,
/// and the verdict is taken in that posture, so the gate and the verdict can never use two different ones.
/// </summary>
/// <remarks>
/// <para>Trusted roots must be absolute paths when the policy is built (an <see cref="ArgumentException"/> names the
/// first that is not); nothing is read from the file system then. They are canonicalised (every symlink resolved)
/// each time a walk first needs them, so a root that is a symlink follows its target, and a root missing at that time
/// trusts nothing.</para>
/// <para>A policy is immutable once built and may be shared by any number of threads. The
/// <see cref="Callback"/>, if any, is called from whichever thread runs a walk.</para>
/// </remarks>
public sealed class TrustPolicy : IWalkPosture
{
    /// <summary>The default bound on files hashed to compare with a pinned digest: 4 GiB.</summary>
    internal const long DefaultMaxDigestFileLength = 4L * 1024 * 1024 * 1024;

    private ImmutableArray<string> _trustedRoots = ImmutableArray<string>.Empty;
    private ImmutableArray<ImagePin> _pinnedImages = ImmutableArray<ImagePin>.Empty;
    private ImmutableArray<string> _trustedUrlPrefixes = ImmutableArray<string>.Empty;
    private long _maxDigestFileLength = DefaultMaxDigestFileLength;

    /// <summary>
    /// Gets the library's default policy: the <see cref="TrustPosture.Host"/> posture, no trusted location, no pinned
    /// digest. It answers one question, "what may an image this host's administrator chose name?", and is the default
    /// wherever the caller names the image file (<see cref="Walk.ImageChainResolverOptions"/>, the store scanner, the domain
    /// reader, the CLI's <c>check FILE</c>). Where the bytes come from someone else (the upload gate,
    /// <c>AddBackingChain</c>, the CLI's <c>check -</c>), the default is <see cref="Untrusted"/> instead.
    /// </summary>
    public static TrustPolicy Default { get; } = new();

    /// <summary>Gets a policy in the <see cref="TrustPosture.UntrustedImage"/> posture that trusts no location: an image may name no other file.</summary>
    public static TrustPolicy Untrusted { get; } = new() { Posture = TrustPosture.UntrustedImage };

    /// <summary>Gets qemu-img's behaviour: every local reference is followed, probed or not. For reporting like <c>qemu-img info</c>; its verdicts still refuse what the host posture refuses.</summary>
    public static TrustPolicy QemuCompatible { get; } = new() { FollowUntrustedReferences = true };

    /// <summary>Gets whose word an image's header is. Default <see cref="TrustPosture.Host"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined posture.</exception>
    public TrustPosture Posture
    {
        get;
        init
        {
            if (value is not (TrustPosture.Host or TrustPosture.UntrustedImage))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown trust posture.");
            }

            field = value;
        }
    }

    /// <summary>Gets the directories whose files are trusted (compared after resolving every symlink, when a walk needs them).</summary>
    /// <remarks>
    /// Setting them looks only at the text (a root must be an absolute path); the file system is read when a walk
    /// first needs them, so a policy may be built before its directories exist. A root that does not exist then, or is
    /// not a directory, trusts nothing. The DI package's validation and health check report such a root.
    /// </remarks>
    /// <exception cref="ArgumentException">A root is empty or relative.</exception>
    public ImmutableArray<string> TrustedRoots
    {
        get => _trustedRoots;
        init
        {
            ImmutableArray<string> roots = value.IsDefault ? ImmutableArray<string>.Empty : value;
            foreach (string root in roots)
            {
                if (string.IsNullOrEmpty(root) || !Path.IsPathFullyQualified(root))
                {
                    throw new ArgumentException($"The trusted root '{root}' is not an absolute path.", nameof(value));
                }
            }

            _trustedRoots = roots;
        }
    }

    /// <summary>
    /// Gets the http(s) URL prefixes whose images are trusted, in normal form. A URL an image names is trusted when,
    /// normalised the same way (scheme and host lower-cased, default port dropped, unreserved percent-escapes decoded
    /// and the others upper-cased, dot-segments removed), it lies under a prefix on a path-segment boundary: under
    /// <c>http://h/images/</c> (or <c>http://h/images</c>) lie <c>http://h/images/a.qcow2</c> and
    /// <c>http://h/images/x/../b.qcow2</c>, but neither <c>http://h/images/../secret</c> nor
    /// <c>http://h/images-old/a.qcow2</c>. URLs with userinfo, backslashes or encoded slashes in their path are
    /// never trusted by prefix. A query in the URL is not compared unless the prefix has one, which must then match exactly.
    /// </summary>
    /// <exception cref="ArgumentException">A prefix is not an absolute http or https URL this library can normalise.</exception>
    public ImmutableArray<string> TrustedUrlPrefixes
    {
        get => _trustedUrlPrefixes;
        init
        {
            if (value.IsDefault)
            {
                _trustedUrlPrefixes = ImmutableArray<string>.Empty;
                return;
            }

            var prefixes = ImmutableArray.CreateBuilder<string>(value.Length);
            foreach (string prefix in value)
            {
                if (prefix is null)
                {
                    throw new ArgumentException("A trusted URL prefix is null.", nameof(value));
                }

                if (!HttpUrl.TryNormalize(prefix, out string normalized, out string? error))
                {
                    throw new ArgumentException($"The trusted URL prefix '{prefix}' is not usable: {error}.", nameof(value));
                }

                prefixes.Add(normalized);
            }

            _trustedUrlPrefixes = prefixes.MoveToImmutable();
        }
    }

    /// <summary>
    /// Gets the pinned images: locations the host chose, each with the SHA-256 its content must have. A reference
    /// that names exactly a pinned location (see <see cref="ImagePin"/> for how names are compared) is trusted when
    /// the regular file there, no larger than <see cref="MaxDigestFileLength"/>, hashes to the pin's digest. A name
    /// no root, prefix or pin holds is refused without being opened, looked up or hashed.
    /// </summary>
    public ImmutableArray<ImagePin> PinnedImages
    {
        get => _pinnedImages;
        init
        {
            ImmutableArray<ImagePin> pins = value.IsDefault ? ImmutableArray<ImagePin>.Empty : value;
            foreach (ImagePin pin in pins)
            {
                if (pin is null)
                {
                    throw new ArgumentException("A pinned image is null.", nameof(value));
                }
            }

            _pinnedImages = pins;
        }
    }

    /// <summary>
    /// Gets the largest file that is hashed to compare with a pin. Default 4 GiB. Only regular files at a pinned
    /// location are hashed; a larger one is refused exactly as a mismatching one.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public long MaxDigestFileLength
    {
        get => _maxDigestFileLength;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _maxDigestFileLength = value;
        }
    }

    /// <summary>Gets the caller's own trust rule, asked before anything is opened.</summary>
    public IImageTrust? Callback { get; init; }

    /// <summary>
    /// Gets whether references that are not trusted are followed anyway (qemu-img's behaviour), so that a chain can
    /// be described as <c>qemu-img info</c> describes it. It changes what is opened, never what is accepted.
    /// Default <see langword="false"/>.
    /// </summary>
    public bool FollowUntrustedReferences { get; init; }

    /// <summary>Gets whether the policy pins any image.</summary>
    internal bool PinsImages => !_pinnedImages.IsEmpty;

    /// <summary>
    /// Whether a location's canonical path can change a decision: only when a trusted root exists or a callback is
    /// asked. Otherwise nothing is trusted by location, and resolving every symlink would be wasted work.
    /// </summary>
    internal bool UsesCanonicalPaths => !_trustedRoots.IsEmpty || Callback is not null;

    /// <summary>Whether a URL, in normal form, lies under a trusted prefix.</summary>
    internal bool IsUrlTrusted(string normalizedUrl)
    {
        foreach (string prefix in _trustedUrlPrefixes)
        {
            if (HttpUrl.IsUnder(normalizedUrl, prefix))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The pins whose location a name spells (a local name as <see cref="ImagePin.CleanLocalName"/> leaves it, or a
    /// URL in normal form): a comparison of text only, never a look at the file system.
    /// </summary>
    internal ImmutableArray<ImagePin> PinsAt(string key)
    {
        ImmutableArray<ImagePin>.Builder? found = null;
        foreach (ImagePin pin in _pinnedImages)
        {
            if (string.Equals(pin.Key, key, StringComparison.Ordinal))
            {
                (found ??= ImmutableArray.CreateBuilder<ImagePin>()).Add(pin);
            }
        }

        return found?.ToImmutable() ?? ImmutableArray<ImagePin>.Empty;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"{Posture}, {_trustedRoots.Length} trusted root(s), {_trustedUrlPrefixes.Length} trusted URL prefix(es), {_pinnedImages.Length} pinned image(s){(FollowUntrustedReferences ? ", follows untrusted references" : "")}");

    /// <inheritdoc/>
    bool IWalkPosture.ReadsUntrustedImage => Posture == TrustPosture.UntrustedImage;
}
