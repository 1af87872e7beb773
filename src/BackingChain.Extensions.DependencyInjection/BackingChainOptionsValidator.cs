using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using BackingChain.Streaming;
using BackingChain.Trust;
using Microsoft.Extensions.Options;
using BackingChain.Walk;

namespace BackingChain.Hosting;

/// <summary>
/// Checks <see cref="BackingChainOptions"/> once, when the options are first built (at the host's start, with
/// <c>ValidateOnStart</c>): every failure names the setting as the configuration spells it
/// (<c>BackingChain:TrustedRoots:0</c>), so a bad setting stops the host with a message saying what to fix. The
/// ranges are the library's own: each value is tried on the options type that holds the rule.
/// </summary>
internal sealed class BackingChainOptionsValidator : IValidateOptions<BackingChainOptions>
{
    public ValidateOptionsResult Validate(string? name, BackingChainOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        List<string> errors = Errors(options, checkFileSystem: true);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>
    /// Every invalid setting, each message starting with its configuration key. The file system is read only when
    /// <paramref name="checkFileSystem"/> says so (at start), never while a policy is built.
    /// </summary>
    internal static List<string> Errors(BackingChainOptions options, bool checkFileSystem)
    {
        var errors = new List<string>();
        string section = BackingChainOptions.SectionName;

        if (BackingChainOptions.ParsePosture(options.Posture) is null)
        {
            errors.Add($"{section}:{nameof(options.Posture)}: '{options.Posture}' is not a posture; use \"host\" or \"untrusted-image\".");
        }

        for (int i = 0; i < options.TrustedRoots.Count; i++)
        {
            string root = options.TrustedRoots[i];
            string key = Key(section, nameof(options.TrustedRoots), i);
            if (string.IsNullOrEmpty(root) || !Path.IsPathFullyQualified(root))
            {
                errors.Add($"{key}: the trusted root '{root}' is not an absolute path.");
            }
            else if (checkFileSystem && !Directory.Exists(root))
            {
                errors.Add($"{key}: the trusted root '{root}' is not an existing directory.");
            }
        }

        for (int i = 0; i < options.PinnedImages.Count; i++)
        {
            if (!ImagePin.TryParse(options.PinnedImages[i], out _, out string? error))
            {
                errors.Add($"{Key(section, nameof(options.PinnedImages), i)}: {error}");
            }
        }

        for (int i = 0; i < options.TrustedUrlPrefixes.Count; i++)
        {
            Try(errors, Key(section, nameof(options.TrustedUrlPrefixes), i), () => _ = new TrustPolicy { TrustedUrlPrefixes = [options.TrustedUrlPrefixes[i]] });
        }

        Try(errors, $"{section}:{nameof(options.MaxDigestFileLength)}", () => _ = new TrustPolicy { MaxDigestFileLength = options.MaxDigestFileLength });
        Try(errors, $"{section}:{nameof(options.MaxDepth)}", () => _ = new ImageChainResolverOptions { MaxDepth = options.MaxDepth });
        Try(errors, $"{section}:{nameof(options.Timeout)}", () => _ = new ImageChainResolverOptions { Timeout = options.Timeout });
        Try(errors, $"{section}:{nameof(options.HeadWindowLength)}", () => _ = new UploadInspectionOptions { HeadWindowLength = options.HeadWindowLength });
        Try(errors, $"{section}:{nameof(options.TailWindowLength)}", () => _ = new UploadInspectionOptions { TailWindowLength = options.TailWindowLength });
        return errors;
    }

    private static string Key(string section, string setting, int index) => string.Create(CultureInfo.InvariantCulture, $"{section}:{setting}:{index}");

    private static void Try(List<string> errors, string key, Action build)
    {
        try
        {
            build();
        }
        catch (ArgumentException e)
        {
            // The library's message says what is wrong; the key says which setting to fix. The parameter name the
            // runtime appends ("(Parameter 'value')") names our setter, not the user's setting, so it is left out.
            string message = e is ArgumentOutOfRangeException range && range.ActualValue is not null
                ? $"{range.ActualValue} is out of range: {FirstLine(e.Message)}"
                : FirstLine(e.Message);
            errors.Add($"{key}: {message}");
        }
    }

    private static string FirstLine(string message)
    {
        int parameter = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        message = parameter < 0 ? message : message[..parameter];
        int end = message.IndexOfAny(['\r', '\n']);
        return end < 0 ? message : message[..end];
    }
}
