using System;
using BackingChain.Formats;

namespace BackingChain.Chain;

/// <summary>
/// qemu's rules (block.c, POSIX build) for turning a stored name into the name it opens:
/// <c>path_has_protocol</c>, <c>path_is_absolute</c> and <c>path_combine</c>. No normalisation, no
/// symlink resolution: <c>sub/dir/../../base.raw</c> stays as it is, like qemu's <c>full-backing-filename</c>.
/// </summary>
internal static class QemuPaths
{
    /// <summary>True when a <c>:</c> occurs before any <c>/</c>.</summary>
    public static bool HasProtocol(ReadOnlySpan<char> name) => NameKinds.HasProtocol(name);

    /// <summary>Classifies a stored name. Windows paths are recognised so they are never opened as POSIX paths.</summary>
    public static ReferenceKind Classify(string name) => NameKinds.Classify(name);

    /// <summary>The protocol prefix of a name (<c>"nbd"</c> for <c>nbd://h/x</c>), or <see langword="null"/>.</summary>
    public static string? GetProtocol(string name)
    {
        if (!HasProtocol(name))
        {
            return null;
        }

        return name[..name.IndexOf(':')];
    }

    /// <summary>
    /// qemu's <c>bdrv_make_absolute_filename</c>: a protocol or absolute name is kept; a relative one is
    /// appended to the directory part of <paramref name="referrer"/>, the referring image's name as it was opened.
    /// </summary>
    public static string? Combine(string referrer, string name)
    {
        if (name.Length == 0)
        {
            return null;
        }

        if (HasProtocol(name) || name.StartsWith('/'))
        {
            return name;
        }

        return string.Concat(DirectoryPrefix(referrer), name);
    }

    /// <summary>
    /// Turns a name an image stores into a reference. Backing names follow qemu's protocol rules; data-file and
    /// extent names are literal file names (qemu 7.2.13 opens them with <c>parse_filename = false</c>), so a
    /// colon or a <c>json:</c> prefix there is just part of a file name.
    /// </summary>
    public static ImageReference ToReference(string referrer, string name, ReferenceRole role, string? recordedFormat)
    {
        if (role is not (ReferenceRole.ExternalDataFile or ReferenceRole.Extent))
        {
            return new ImageReference(name, role, recordedFormat, Classify(name), Combine(referrer, name));
        }

        ReferenceKind kind = NameKinds.IsWindowsPath(name) ? ReferenceKind.WindowsPath
            : name.StartsWith('/') ? ReferenceKind.AbsolutePath
            : ReferenceKind.RelativePath;
        string? fullName = name.Length == 0 ? null
            : kind == ReferenceKind.AbsolutePath ? name
            : string.Concat(DirectoryPrefix(referrer), name);
        return new ImageReference(name, role, recordedFormat, kind, fullName);
    }

    /// <summary>The prefix of <paramref name="referrer"/> up to its last <c>/</c>, never cutting into a <c>proto:</c> prefix.</summary>
    private static ReadOnlySpan<char> DirectoryPrefix(string referrer)
    {
        int start = 0;
        if (HasProtocol(referrer))
        {
            start = referrer.IndexOf(':') + 1;
        }

        int slash = referrer.LastIndexOf('/');
        int cut = slash + 1 > start ? slash + 1 : start;
        return referrer.AsSpan(0, cut);
    }
}
