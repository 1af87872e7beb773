using System;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using System.Text;
using BackingChain.Internal;

namespace BackingChain.Trust;

/// <summary>
/// A pinned image: a location the host chose (an absolute local path or an http(s) URL) and the SHA-256 its content
/// must have. A reference that no trusted root or URL prefix holds is trusted when it names exactly a pinned location
/// and the file there hashes to the pin's digest.
/// </summary>
/// <remarks>
/// <para>A pin vouches for content at a name the host chose; it never makes a name a guest chose worth opening. A
/// reference that names no pinned location is refused without any file system call on that name, so the time to
/// refuse says nothing about what exists there.</para>
/// <para>Local names are compared as spelled, after removing repeated slashes, <c>.</c> segments and a trailing
/// slash; <c>..</c> is never collapsed, because the kernel resolves it after the symlinks before it, so
/// <c>/srv/pins/link/../base.raw</c> need not be <c>/srv/pins/base.raw</c>. URLs are compared in the normal form of
/// <see cref="TrustPolicy.TrustedUrlPrefixes"/>.</para>
/// <para>The text form is <c>SHA256=LOCATION</c> (64 hexadecimal digits, an equals sign, the location): the digest
/// comes first because its length is fixed, so a location may itself contain <c>=</c>.</para>
/// </remarks>
public sealed class ImagePin : IEquatable<ImagePin>
{
    private const int DigestLength = 64;

    private ImagePin(string location, string sha256, string key)
    {
        Location = location;
        Sha256 = sha256;
        Key = key;
    }

    /// <summary>Gets the pinned location as given: an absolute local path or an http(s) URL.</summary>
    public string Location { get; }

    /// <summary>Gets the SHA-256 of the pinned content: 64 lower-case hexadecimal digits.</summary>
    public string Sha256 { get; }

    /// <summary>The form a reference's name is compared in: the cleaned local path, or the URL in normal form.</summary>
    internal string Key { get; }

    /// <summary>Creates a pin from a location and a digest.</summary>
    /// <param name="location">An absolute local path, or an http(s) URL.</param>
    /// <param name="sha256">The SHA-256 of the content, 64 hexadecimal digits in either case.</param>
    /// <returns>The pin.</returns>
    /// <exception cref="ArgumentException">The location is not absolute or not a usable URL, or the digest is not 64 hexadecimal digits.</exception>
    public static ImagePin Create(string location, string sha256)
    {
        ArgumentNullException.ThrowIfNull(location);
        ArgumentNullException.ThrowIfNull(sha256);
        if (!TryCreate(location, sha256, out ImagePin? pin, out string? error))
        {
            throw new ArgumentException(error);
        }

        return pin;
    }

    /// <summary>Parses the text form <c>SHA256=LOCATION</c>.</summary>
    /// <param name="text">The pin as text.</param>
    /// <returns>The pin.</returns>
    /// <exception cref="ArgumentException">The text is not of that form, or its location or digest is not usable.</exception>
    public static ImagePin Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TryParse(text, out ImagePin? pin, out string? error))
        {
            throw new ArgumentException(error);
        }

        return pin;
    }

    /// <summary>Parses the text form <c>SHA256=LOCATION</c>, saying what is wrong when it cannot.</summary>
    /// <param name="text">The pin as text.</param>
    /// <param name="pin">The pin, when the text is one.</param>
    /// <param name="error">Why the text is not a pin, in words for the person who wrote it.</param>
    /// <returns>Whether the text is a pin.</returns>
    public static bool TryParse(string? text, [NotNullWhen(true)] out ImagePin? pin, [NotNullWhen(false)] out string? error)
    {
        pin = null;
        string trimmed = text?.Trim() ?? "";
        if (trimmed.Length <= DigestLength + 1 || trimmed[DigestLength] != '=')
        {
            error = $"'{text}' is not a pin: write SHA256=LOCATION (64 hexadecimal digits, '=', an absolute path or an http(s) URL).";
            return false;
        }

        return TryCreate(trimmed[(DigestLength + 1)..], trimmed[..DigestLength], out pin, out error);
    }

    private static bool TryCreate(string location, string sha256, [NotNullWhen(true)] out ImagePin? pin, [NotNullWhen(false)] out string? error)
    {
        pin = null;
        string digest = sha256.Trim();
        if (digest.Length != DigestLength || !IsHex(digest))
        {
            error = $"'{sha256}' is not a SHA-256 digest (64 hexadecimal digits).";
            return false;
        }

        string key;
        if (location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || location.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            if (!HttpUrl.TryNormalize(location, out key, out string? why))
            {
                error = $"The pinned URL '{location}' is not usable: {why}.";
                return false;
            }
        }
        else if (location.Length == 0 || !Path.IsPathFullyQualified(location) || location.Contains('\0', StringComparison.Ordinal))
        {
            error = $"The pinned location '{location}' is neither an absolute path nor an http(s) URL.";
            return false;
        }
        else
        {
            key = CleanLocalName(location);
        }

        pin = new ImagePin(location, digest.ToLowerInvariant(), key);
        error = null;
        return true;
    }

    /// <summary>
    /// A local name with repeated slashes, <c>.</c> segments and a trailing slash removed: changes that name the same
    /// file whatever the file system holds. <c>..</c> stays, since what it leads to depends on the symlinks before it.
    /// </summary>
    internal static string CleanLocalName(string name)
    {
        if (!name.Contains("//", StringComparison.Ordinal) && !name.Contains("/./", StringComparison.Ordinal)
            && !name.EndsWith("/.", StringComparison.Ordinal) && !(name.Length > 1 && name.EndsWith('/')))
        {
            return name;
        }

        var cleaned = new StringBuilder(name.Length);
        foreach (string segment in name.Split('/'))
        {
            if (segment.Length == 0 || segment == ".")
            {
                continue;
            }

            cleaned.Append('/').Append(segment);
        }

        return cleaned.Length == 0 ? "/" : cleaned.ToString();
    }

    private static bool IsHex(string text)
    {
        foreach (char c in text)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public bool Equals(ImagePin? other) => other is not null && Key == other.Key && Sha256 == other.Sha256;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as ImagePin);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Key, Sha256);

    /// <summary>Returns the text form, <c>SHA256=LOCATION</c>.</summary>
    /// <returns>The pin as text.</returns>
    public override string ToString() => $"{Sha256}={Location}";
}
