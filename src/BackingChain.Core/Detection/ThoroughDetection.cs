using System.Collections.Immutable;

namespace BackingChain.Detection;

/// <summary>
/// The result of thorough detection: every format signature in the image's head, tail and name, qemu 7.2's
/// own choice for comparison, and whether the content is a polyglot (two formats at once).
/// </summary>
public sealed class ThoroughDetection
{
    internal ThoroughDetection(ImageFormat qemuFormat, ImmutableArray<FormatSignature> signatures, ImageFormat format, bool isPolyglot)
    {
        QemuFormat = qemuFormat;
        Signatures = signatures;
        Format = format;
        IsPolyglot = isPolyglot;
    }

    /// <summary>Gets the format qemu 7.2's probe picks (what qemu and libvirt would use without a declared format).</summary>
    public ImageFormat QemuFormat { get; }

    /// <summary>Gets every signature found, head first, then tail, then file name.</summary>
    public ImmutableArray<FormatSignature> Signatures { get; }

    /// <summary>
    /// Gets the format the content shows: the one format whose signature was found in the head or tail;
    /// <see cref="ImageFormat.Raw"/> when none was; <see cref="ImageFormat.Unknown"/> for a polyglot, which is
    /// reported rather than resolved.
    /// </summary>
    public ImageFormat Format { get; }

    /// <summary>Gets whether two or more different formats' signatures are in the content.</summary>
    public bool IsPolyglot { get; }

    /// <summary>Gets whether qemu's probe would see something other than what the content shows (a blind spot or a polyglot).</summary>
    public bool DiffersFromQemu => Format != QemuFormat;
}
