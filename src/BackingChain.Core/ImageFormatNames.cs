using System;
using System.Diagnostics.CodeAnalysis;
using BackingChain.Formats;

namespace BackingChain;

/// <summary>
/// Maps <see cref="ImageFormat"/> values to and from qemu's block-driver names.
/// </summary>
public static class ImageFormatNames
{
    /// <summary>Gets qemu's driver name for <paramref name="format"/> (for example <c>"qcow2"</c> or <c>"vpc"</c>).</summary>
    /// <param name="format">The format.</param>
    /// <returns>The lower-case driver name; <c>"unknown"</c> for <see cref="ImageFormat.Unknown"/>.</returns>
    public static string GetQemuName(this ImageFormat format) => FormatReaders.Get(format)?.QemuName ?? "unknown";

    /// <summary>Parses one of qemu's driver names, exactly as <c>qemu-img -f</c> accepts them (case-sensitive).</summary>
    /// <param name="name">The driver name, for example a backing format recorded in an image.</param>
    /// <param name="format">The format, when the name is known.</param>
    /// <returns><see langword="true"/> when <paramref name="name"/> names a known format.</returns>
    public static bool TryParse(ReadOnlySpan<char> name, out ImageFormat format)
    {
        // Each format's reader owns its qemu name; the registry compares spans, so parsing allocates nothing.
        format = FormatReaders.Find(name)?.Format ?? ImageFormat.Unknown;
        return format != ImageFormat.Unknown;
    }

    /// <summary>Parses a driver name, throwing for an unknown one.</summary>
    /// <param name="name">The driver name.</param>
    /// <returns>The format.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a known driver name.</exception>
    public static ImageFormat Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!TryParse(name, out ImageFormat format))
        {
            ThrowUnknown(name);
        }

        return format;
    }

    [DoesNotReturn]
    private static void ThrowUnknown(string name) =>
        throw new ArgumentException($"Unknown image format '{name}'.", nameof(name));
}
