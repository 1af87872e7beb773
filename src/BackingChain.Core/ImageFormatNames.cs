using System;
using System.Diagnostics.CodeAnalysis;

namespace BackingChain;

/// <summary>
/// Maps <see cref="ImageFormat"/> values to and from qemu's block-driver names.
/// </summary>
public static class ImageFormatNames
{
    // Each format's reader owns its qemu name, and the readers (Formats/) sit above this namespace: their registry
    // publishes the names here when the assembly loads (FormatReaders.PublishNames), so these extensions read them
    // without naming the layer above. Indexed by ImageFormat; null where no reader is registered.
    private static string?[] s_byFormat = [];

    /// <summary>Takes the registry's names, indexed by <see cref="ImageFormat"/>.</summary>
    internal static void Publish(string?[] byFormat) => s_byFormat = byFormat;

    /// <summary>Gets qemu's driver name for <paramref name="format"/> (for example <c>"qcow2"</c> or <c>"vpc"</c>).</summary>
    /// <param name="format">The format.</param>
    /// <returns>The lower-case driver name; <c>"unknown"</c> for <see cref="ImageFormat.Unknown"/>.</returns>
    public static string GetQemuName(this ImageFormat format) =>
        (uint)format < (uint)s_byFormat.Length && s_byFormat[(int)format] is { } name ? name : "unknown";

    /// <summary>Parses one of qemu's driver names, exactly as <c>qemu-img -f</c> accepts them (case-sensitive).</summary>
    /// <param name="name">The driver name, for example a backing format recorded in an image.</param>
    /// <param name="format">The format, when the name is known.</param>
    /// <returns><see langword="true"/> when <paramref name="name"/> names a known format.</returns>
    public static bool TryParse(ReadOnlySpan<char> name, out ImageFormat format)
    {
        // Spans are compared, so parsing allocates nothing.
        string?[] names = s_byFormat;
        for (int i = 0; i < names.Length; i++)
        {
            if (names[i] is { } known && name.SequenceEqual(known))
            {
                format = (ImageFormat)i;
                return true;
            }
        }

        format = ImageFormat.Unknown;
        return false;
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
