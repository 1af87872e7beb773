using System;

namespace BackingChain.Formats;

/// <summary>What thorough detection read of one image, handed to every <see cref="SignatureRule"/>.</summary>
internal readonly ref struct SignatureInput
{
    public SignatureInput(ReadOnlySpan<byte> head, ReadOnlySpan<byte> probe, ReadOnlySpan<byte> tail, long imageLength, ImageFormat qemuFormat)
    {
        Head = head;
        Probe = probe;
        Tail = tail;
        ImageLength = imageLength;
        QemuFormat = qemuFormat;
    }

    /// <summary>Gets the image's first bytes (up to <see cref="Detection.ImageFormatDetector.ThoroughHeadLength"/>).</summary>
    public ReadOnlySpan<byte> Head { get; }

    /// <summary>Gets the first 512 bytes, zero-padded, as qemu's probe sees them.</summary>
    public ReadOnlySpan<byte> Probe { get; }

    /// <summary>Gets the image's last bytes (up to <see cref="Detection.ImageFormatDetector.ThoroughTailLength"/>).</summary>
    public ReadOnlySpan<byte> Tail { get; }

    /// <summary>Gets the image length in bytes.</summary>
    public long ImageLength { get; }

    /// <summary>Gets the format qemu's probe picked, head and name together.</summary>
    public ImageFormat QemuFormat { get; }
}
