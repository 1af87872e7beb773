namespace BackingChain.Chain;

/// <summary>
/// The image the walk reached but could not describe: what it was read as, and why it could not be read. A chain
/// whose top image fails to parse still says which format the bytes were taken for and how that format was known.
/// Immutable; made only by the resolver and the upload gate.
/// </summary>
public sealed class UnreadLayer
{
    internal UnreadLayer(string fileName, ImageFormat format, FormatSource formatSource, ImageFormat probedFormat, string message)
    {
        FileName = fileName;
        Format = format;
        FormatSource = formatSource;
        ProbedFormat = probedFormat;
        Message = message;
    }

    /// <summary>Gets the image's name, as the layer above named it (or as the caller gave it, for the top).</summary>
    public string FileName { get; }

    /// <summary>Gets the format the image was read as: declared, recorded by the layer above, or probed.</summary>
    public ImageFormat Format { get; }

    /// <summary>Gets how <see cref="Format"/> was known.</summary>
    public FormatSource FormatSource { get; }

    /// <summary>Gets what the probe found in the image's first bytes (<see cref="ImageFormat.Unknown"/> when it was not probed).</summary>
    public ImageFormat ProbedFormat { get; }

    /// <summary>Gets why the image could not be read, worded like qemu-img where qemu-img has words for it.</summary>
    public string Message { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{FileName} ({Format.GetQemuName()}, {FormatSource}): {Message}";
}
