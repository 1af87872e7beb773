using System;
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

    /// <summary>Whether the file a reference names is trusted by location, and the canonical path used to decide it.</summary>
    public (bool Trusted, string? CanonicalPath) Judge(ImageReference reference)
    {
        if (!_policy.UsesCanonicalPaths)
        {
            return (false, null);
        }

        string? canonical = reference.IsLocalPath && reference.FullName is not null ? Canonicalize(reference.FullName) : null;
        if (canonical is not null)
        {
            foreach (string root in Roots)
            {
                if (RealPath.IsUnder(canonical, root))
                {
                    return (true, canonical);
                }
            }
        }

        return (_policy.Callback?.IsTrusted(reference, canonical) == true, canonical);
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
