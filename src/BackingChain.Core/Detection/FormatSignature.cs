namespace BackingChain.Detection;

/// <summary>One format signature found by <see cref="ImageFormatDetector.DetectThorough(System.ReadOnlySpan{byte}, System.ReadOnlySpan{byte}, long, string?)"/>.</summary>
/// <param name="Format">The format the signature belongs to.</param>
/// <param name="Location">Where it was seen.</param>
/// <param name="SeenByQemu">Whether qemu 7.2's probe (first 512 bytes and the name) sees it.</param>
/// <param name="Description">What was found, for people.</param>
public readonly record struct FormatSignature(ImageFormat Format, SignatureLocation Location, bool SeenByQemu, string Description);
