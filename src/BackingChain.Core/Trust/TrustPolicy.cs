using System;
using System.Collections.Immutable;
using System.Linq;
using BackingChain.Chain;
using BackingChain.Internal;

namespace BackingChain.Trust;

/// <summary>
/// What may be opened and what is trusted. The rule applied (libvirt's): an image whose format was probed
/// may be used only if it is raw, or it names no other file, or every file it names is present and trusted.
/// A probed image's references are therefore opened only when their location is trusted (or when
/// <see cref="FollowUntrustedReferences"/> copies qemu-img's unsafe behaviour).
/// </summary>
public sealed class TrustPolicy
{
    private ImmutableArray<string> _trustedRoots = ImmutableArray<string>.Empty;
    private ImmutableArray<string> _canonicalRoots = ImmutableArray<string>.Empty;
    private ImmutableArray<string> _trustedDigests = ImmutableArray<string>.Empty;

    /// <summary>The default: references of images with a declared or recorded format are followed; a probed image's references only into trusted locations.</summary>
    public static TrustPolicy Default { get; } = new();

    /// <summary>qemu-img's behaviour: every local reference is followed, probed or not. For reporting like <c>qemu-img info</c>; not safe.</summary>
    public static TrustPolicy QemuCompatible { get; } = new() { FollowUntrustedReferences = true };

    /// <summary>Directories whose files are trusted (compared after resolving every symlink).</summary>
    public ImmutableArray<string> TrustedRoots
    {
        get => _trustedRoots;
        init
        {
            _trustedRoots = value.IsDefault ? ImmutableArray<string>.Empty : value;
            _canonicalRoots = _trustedRoots.Select(RealPath.TryResolve).OfType<string>().ToImmutableArray();
        }
    }

    /// <summary>SHA-256 digests (hex) of trusted images; an opened image whose content matches one is trusted wherever it lies.</summary>
    public ImmutableArray<string> TrustedDigests
    {
        get => _trustedDigests;
        init => _trustedDigests = value.IsDefault
            ? ImmutableArray<string>.Empty
            : value.Select(d => d.Trim().ToLowerInvariant()).ToImmutableArray();
    }

    /// <summary>The caller's own trust rule, asked before anything is opened.</summary>
    public IImageTrust? Callback { get; init; }

    /// <summary>Follow a probed image's references even into untrusted locations (qemu-img's behaviour). Default <see langword="false"/>.</summary>
    public bool FollowUntrustedReferences { get; init; }

    /// <summary>Open nothing outside trusted locations, whatever the format source. Default <see langword="false"/>.</summary>
    public bool RestrictToTrustedLocations { get; init; }

    /// <summary>
    /// Whether a location's canonical path can change a decision: only when a trusted root exists or a callback
    /// is asked. Otherwise nothing is trusted by location, and resolving every symlink (realpath(3), one
    /// readlink per path component) would be wasted work on every layer.
    /// </summary>
    internal bool UsesCanonicalPaths => !_canonicalRoots.IsEmpty || Callback is not null;

    /// <summary>Whether the policy pins digests, so opened images are hashed.</summary>
    public bool PinsDigests => !_trustedDigests.IsEmpty;

    /// <summary>Whether the location a reference names is trusted: inside a trusted root, or accepted by the callback. Nothing is opened.</summary>
    /// <param name="reference">The reference.</param>
    /// <returns><see langword="true"/> when trusted.</returns>
    public bool IsLocationTrusted(ImageReference reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (!UsesCanonicalPaths)
        {
            return false;
        }

        string? canonical = reference.IsLocalPath && reference.FullName is not null ? RealPath.TryResolve(reference.FullName) : null;
        return IsLocationTrusted(reference, canonical);
    }

    /// <summary>Whether a top image given by path lies in a trusted location.</summary>
    /// <param name="path">The path.</param>
    /// <returns><see langword="true"/> when trusted.</returns>
    public bool IsPathTrusted(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var reference = new ImageReference(path, ReferenceRole.BackingFile, null, QemuPaths.Classify(path), path);
        return IsLocationTrusted(reference);
    }

    /// <summary>Whether a SHA-256 digest (hex) is pinned.</summary>
    /// <param name="sha256">The digest.</param>
    /// <returns><see langword="true"/> when pinned.</returns>
    public bool IsDigestTrusted(string? sha256) =>
        sha256 is not null && _trustedDigests.Contains(sha256.ToLowerInvariant());

    internal bool IsLocationTrusted(ImageReference reference, string? canonicalPath)
    {
        if (canonicalPath is not null)
        {
            foreach (string root in _canonicalRoots)
            {
                if (RealPath.IsUnder(canonicalPath, root))
                {
                    return true;
                }
            }
        }

        return Callback?.IsTrusted(reference, canonicalPath) == true;
    }
}
