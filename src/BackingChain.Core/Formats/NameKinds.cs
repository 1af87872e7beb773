using System;

namespace BackingChain.Formats;

/// <summary>
/// What kind of name an image stores (qemu's <c>path_has_protocol</c>, <c>path_is_absolute</c>, and what it cannot
/// open on this host): the part of qemu's path rules that the format readers need to prefer a local parent path
/// among several locators. <see cref="Chain.QemuPaths"/> builds on it to resolve names as qemu opens them.
/// </summary>
internal static class NameKinds
{
    private const string JsonPrefix = "json:";

    /// <summary>True when a <c>:</c> occurs before any <c>/</c>.</summary>
    public static bool HasProtocol(ReadOnlySpan<char> name)
    {
        int colon = name.IndexOf(':');
        if (colon < 0)
        {
            return false;
        }

        int slash = name.IndexOf('/');
        return slash < 0 || colon < slash;
    }

    /// <summary>Classifies a stored name. Windows paths are recognised so they are never opened as POSIX paths.</summary>
    public static ReferenceKind Classify(string name)
    {
        if (name.StartsWith(JsonPrefix, StringComparison.Ordinal))
        {
            return ReferenceKind.Json;
        }

        if (IsWindowsPath(name))
        {
            return ReferenceKind.WindowsPath;
        }

        if (HasProtocol(name))
        {
            return ReferenceKind.Protocol;
        }

        return name.StartsWith('/') ? ReferenceKind.AbsolutePath : ReferenceKind.RelativePath;
    }

    /// <summary>Whether a name is a Windows path, which is never opened as a POSIX path.</summary>
    public static bool IsWindowsPath(string name)
    {
        // "C:\dir\x", "C:/dir/x", "\\server\share\x", "\\?\C:\x", or a relative name that only uses backslashes.
        if (name.Length >= 3 && char.IsAsciiLetter(name[0]) && name[1] == ':' && (name[2] == '\\' || name[2] == '/'))
        {
            return true;
        }

        if (name.StartsWith(@"\\", StringComparison.Ordinal))
        {
            return true;
        }

        return name.Contains('\\', StringComparison.Ordinal) && !name.Contains('/', StringComparison.Ordinal);
    }
}
