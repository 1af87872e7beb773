using System;
using System.Text;
using BackingChain.Formats;

namespace BackingChain.Trust;

/// <summary>
/// <c>qemu-img rebase -u</c> command lines: the fix for an image whose backing format is missing. With
/// <c>-u</c> only the header is rewritten; the backing name stays, and the format is recorded.
/// </summary>
internal static class QemuImgRebaseCommand
{
    /// <summary>Whether qemu can record <paramref name="backingFormat"/> in images of <paramref name="format"/> (qcow2 any, QED only raw, the others none).</summary>
    /// <param name="format">The format of the image above.</param>
    /// <param name="backingFormat">The format of the image below.</param>
    /// <returns><see langword="true"/> when a rebase fixes it.</returns>
    public static bool CanRecordBackingFormat(ImageFormat format, ImageFormat backingFormat) =>
        FormatReaders.Get(format) is { } reader && reader.CanRecordBackingFormat(backingFormat);

    /// <summary>Formats <c>qemu-img rebase -f FMT -F BACKING_FMT -b BACKING -u IMAGE</c>, with shell quoting where needed.</summary>
    /// <param name="imageFormat">The image's format.</param>
    /// <param name="backingFormat">The backing image's format.</param>
    /// <param name="backingName">The backing name exactly as stored (kept as it is).</param>
    /// <param name="image">The image to fix.</param>
    /// <returns>The command line.</returns>
    public static string ToCommandLine(ImageFormat imageFormat, ImageFormat backingFormat, string backingName, string image)
    {
        ArgumentNullException.ThrowIfNull(backingName);
        ArgumentNullException.ThrowIfNull(image);
        return $"qemu-img rebase -f {imageFormat.GetQemuName()} -F {backingFormat.GetQemuName()} -b {Quote(backingName)} -u {Quote(image)}";
    }

    /// <summary>POSIX shell quoting: bare when only safe characters, else single-quoted.</summary>
    /// <param name="argument">The argument.</param>
    /// <returns>The quoted argument.</returns>
    internal static string Quote(string argument)
    {
        ArgumentNullException.ThrowIfNull(argument);
        bool safe = argument.Length > 0;
        foreach (char c in argument)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '+' or ',' or ':' or '=' or '@'))
            {
                safe = false;
                break;
            }
        }

        if (safe)
        {
            return argument;
        }

        var builder = new StringBuilder(argument.Length + 2);
        builder.Append('\'');
        builder.Append(argument.Replace("'", "'\\''", StringComparison.Ordinal));
        builder.Append('\'');
        return builder.ToString();
    }
}
