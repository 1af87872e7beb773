using BackingChain.Formats;

namespace BackingChain.Detection;

/// <summary>One format signature found by <see cref="ImageFormatDetector.DetectThorough(System.ReadOnlySpan{byte}, System.ReadOnlySpan{byte}, long, string?)"/>.</summary>
public readonly struct FormatSignature
{
    internal FormatSignature(ImageFormat format, SignatureLocation location, bool seenByQemu, string description)
    {
        Format = format;
        Location = location;
        SeenByQemu = seenByQemu;
        Description = description;
    }

    /// <summary>Gets the format the signature belongs to.</summary>
    public ImageFormat Format { get; }

    /// <summary>Gets where it was seen.</summary>
    public SignatureLocation Location { get; }

    /// <summary>Gets whether qemu 7.2's probe (first 512 bytes and the name) sees it.</summary>
    public bool SeenByQemu { get; }

    /// <summary>Gets what was found, for people.</summary>
    public string Description { get; }
}
