using System;
using System.Text;
using System.Text.Json;

namespace BackingChain.Chain;

/// <summary>
/// Which names denote an image over http(s): a plain <c>http://</c> or <c>https://</c> URL, or qemu's
/// <c>json:</c> pseudo-protocol in exactly one of its two spellings for an http(s) file and nothing else —
/// <c>{"file.driver":"https","file.url":"…"}</c> or <c>{"file":{"driver":"https","url":"…"}}</c>. Any other option
/// (a format driver, cookies, a proxy, TLS settings, a second URL) changes what qemu would open in ways this
/// library does not model, so such a name is not an http name here and stays not followed.
/// </summary>
internal static class HttpReferences
{
    private const string JsonPrefix = "json:";

    /// <summary>The URL a reference denotes, when it denotes an http(s) image.</summary>
    public static bool TryGetUrl(ImageReference reference, out string url)
    {
        url = "";
        // A relative name in an image read over http resolves to a URL, whatever the stored name looked like.
        return !reference.IsLocalPath
            && reference.FullName is { } name
            && TryGetUrl(name, out url);
    }

    /// <summary>The URL a name denotes, when it denotes an http(s) image.</summary>
    public static bool TryGetUrl(string name, out string url)
    {
        url = "";
        if (IsHttpScheme(name))
        {
            url = name;
            return true;
        }

        if (!name.StartsWith(JsonPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        try
        {
            return TryParseJson(Encoding.UTF8.GetBytes(name[JsonPrefix.Length..]), out url) && IsHttpScheme(url);
        }
        catch (JsonException)
        {
            url = "";
            return false;
        }
    }

    // qemu matches the protocol name case-sensitively, so "HTTP://" is not its curl driver; neither is it here.
    private static bool IsHttpScheme(string name) =>
        name.StartsWith("http://", StringComparison.Ordinal) || name.StartsWith("https://", StringComparison.Ordinal);

    private static bool TryParseJson(ReadOnlySpan<byte> json, out string url)
    {
        url = "";
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 4 });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return false;
        }

        string? flatDriver = null, flatUrl = null, nestedDriver = null, nestedUrl = null;
        bool nested = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            if (!reader.Read())
            {
                return false;
            }

            switch (key)
            {
                case "file.driver" when flatDriver is null && reader.TokenType == JsonTokenType.String:
                    flatDriver = reader.GetString();
                    break;
                case "file.url" when flatUrl is null && reader.TokenType == JsonTokenType.String:
                    flatUrl = reader.GetString();
                    break;
                case "file" when !nested && reader.TokenType == JsonTokenType.StartObject:
                    nested = true;
                    if (!TryReadNested(ref reader, out nestedDriver, out nestedUrl))
                    {
                        return false;
                    }

                    break;
                default:
                    // Another option, a repeated key, or a value of the wrong type.
                    return false;
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
        {
            // Not one complete object, or something after it.
            return false;
        }

        (string? driver, string? found) = (flatDriver, flatUrl, nested) switch
        {
            (not null, not null, false) => (flatDriver, flatUrl),
            (null, null, true) => (nestedDriver, nestedUrl),
            _ => (null, null),
        };
        if (driver is not ("http" or "https") || found is null || !found.StartsWith(driver + "://", StringComparison.Ordinal))
        {
            // The driver must be the URL's own scheme: an https driver given an http URL is not one thing.
            return false;
        }

        url = found;
        return true;
    }

    private static bool TryReadNested(ref Utf8JsonReader reader, out string? driver, out string? url)
    {
        driver = null;
        url = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            if (!reader.Read() || reader.TokenType != JsonTokenType.String)
            {
                return false;
            }

            switch (key)
            {
                case "driver" when driver is null:
                    driver = reader.GetString();
                    break;
                case "url" when url is null:
                    url = reader.GetString();
                    break;
                default:
                    return false;
            }
        }

        return reader.TokenType == JsonTokenType.EndObject && driver is not null && url is not null;
    }
}
