using System.Collections.Immutable;
using BackingChain.Chain;
using BackingChain.Internal;

namespace BackingChain.Trust;

/// <summary>
/// The location half of the gate for one walk: whether a reference's file lies in a trusted location. Roots are
/// canonicalised the first time a walk needs them (not when the policy was built), so a root made after the policy,
/// or one that is a symlink to elsewhere, is judged as it is at the time of the walk.
/// </summary>
internal sealed class TrustLocations
{
    /// <summary>How many missing path components are walked up before giving up on a canonical form.</summary>
    private const int MaxMissingComponents = 64;

    private readonly TrustPolicy _policy;
    private ImmutableArray<string> _roots;

    public TrustLocations(TrustPolicy policy) => _policy = policy;

    /// <summary>The policy whose locations these are.</summary>
    public TrustPolicy Policy => _policy;

    /// <summary>
    /// Whether the file a reference names is trusted by location, the canonical path used to decide it, and the
    /// canonical root it lies under (the gate opens it confined beneath that root).
    /// </summary>
    /// <remarks>
    /// A name that is not even spelled under a root (as given, or canonical) is refused without resolving a single
    /// symlink: resolving walks every component, and a hostile name such as <c>/net/host/…</c> would wake the
    /// automounter. Only names spelled under a root are canonicalised, and then they must still lie under it.
    /// The callback, when there is one, sees the canonical path, so it is resolved for it.
    /// </remarks>
    public (bool Trusted, string? CanonicalPath, string? Root) Judge(ImageReference reference)
    {
        if (!reference.IsLocalPath)
        {
            return JudgeUrl(reference);
        }

        if (!_policy.UsesCanonicalPaths || !reference.IsLocalPath || reference.FullName is null)
        {
            bool byCallback = _policy.Callback?.IsTrusted(reference, null) == true;
            return (byCallback, null, null);
        }

        string name = reference.FullName;
        string absolute = RealPath.Absolute(name);
        string? canonical = null;
        if (SpelledUnderARoot(absolute))
        {
            canonical = Canonicalize(name);
            if (canonical is not null)
            {
                foreach (string root in Roots)
                {
                    if (RealPath.IsUnder(canonical, root))
                    {
                        return (true, canonical, root);
                    }
                }
            }
        }

        if (_policy.Callback is { } callback)
        {
            canonical ??= Canonicalize(name);
            return (callback.IsTrusted(reference, canonical), canonical, null);
        }

        return (false, canonical, null);
    }

    /// <summary>
    /// A protocol or <c>json:</c> reference is trusted only as an http(s) URL under a trusted prefix, compared in
    /// normal form (the "canonical path" recorded for it); the callback sees that normal form too. A URL that cannot
    /// be normalised (userinfo, backslashes, encoded slashes...) is trusted by nothing but the callback.
    /// </summary>
    private (bool Trusted, string? CanonicalPath, string? Root) JudgeUrl(ImageReference reference)
    {
        string? normalized = null;
        if (HttpReferences.TryGetUrl(reference, out string url) && HttpUrl.TryNormalize(url, out string normal, out _))
        {
            normalized = normal;
            if (_policy.IsUrlTrusted(normal))
            {
                return (true, normal, null);
            }
        }

        return (_policy.Callback?.IsTrusted(reference, normalized) == true, normalized, null);
    }

    private bool SpelledUnderARoot(string absolute)
    {
        foreach (string root in _policy.TrustedRoots)
        {
            if (RealPath.IsUnder(absolute, root.Length > 1 ? root.TrimEnd('/') : root))
            {
                return true;
            }
        }

        foreach (string root in Roots)
        {
            if (RealPath.IsUnder(absolute, root))
            {
                return true;
            }
        }

        return false;
    }

    private ImmutableArray<string> Roots
    {
        get
        {
            if (_roots.IsDefault)
            {
                var roots = ImmutableArray.CreateBuilder<string>(_policy.TrustedRoots.Length);
                foreach (string root in _policy.TrustedRoots)
                {
                    // A root removed since the policy was built trusts nothing.
                    if (RealPath.TryResolve(root) is { } canonical)
                    {
                        roots.Add(canonical);
                    }
                }

                _roots = roots.ToImmutable();
            }

            return _roots;
        }
    }

    /// <summary>
    /// The canonical path of a file, or of where it would be: a missing file inside a trusted root must be judged
    /// as inside (so that its absence can be reported as such), so the deepest existing directory is canonicalised
    /// and the missing components appended, provided none of them is <c>.</c> or <c>..</c>, which could climb out.
    /// </summary>
    internal static string? Canonicalize(string path)
    {
        if (RealPath.TryResolve(path) is { } resolved)
        {
            return resolved;
        }

        string suffix = "";
        string current = path;
        for (int i = 0; i < MaxMissingComponents; i++)
        {
            string trimmed = current.TrimEnd('/');
            int slash = trimmed.LastIndexOf('/');
            string name = slash < 0 ? trimmed : trimmed[(slash + 1)..];
            if (name.Length == 0 || name is "." or "..")
            {
                return null;
            }

            suffix = suffix.Length == 0 ? name : string.Concat(name, "/", suffix);
            string parent = slash < 0 ? "." : slash == 0 ? "/" : trimmed[..slash];
            if (RealPath.TryResolve(parent) is { } canonicalParent)
            {
                return canonicalParent.EndsWith('/') ? canonicalParent + suffix : string.Concat(canonicalParent, "/", suffix);
            }

            current = parent;
            if (current is "." or "/")
            {
                return null;
            }
        }

        return null;
    }
}
