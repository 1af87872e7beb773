using System.Collections.Immutable;
using BackingChain.Chain;
using BackingChain.Detection;
using BackingChain.Trust;

namespace BackingChain.Streaming;

/// <summary>
/// What <see cref="ImageUploadInspector"/> learned from one upload: its format and where that came from, its
/// length and virtual size, the files it names, the findings and the gate's verdict. Immutable.
/// </summary>
public sealed class UploadInspection
{
    internal UploadInspection(
        TrustDecision verdict,
        UploadVerdictReason reason,
        ImageFormat format,
        FormatSource formatSource,
        ThoroughDetection detection,
        long length,
        ChainLayer? layer,
        ImmutableArray<ImageReference> references,
        ImmutableArray<ChainFinding> findings,
        string? sha256,
        long peakBufferBytes)
    {
        Verdict = verdict;
        Reason = reason;
        Format = format;
        FormatSource = formatSource;
        Detection = detection;
        Length = length;
        Layer = layer;
        References = references.IsDefault ? ImmutableArray<ImageReference>.Empty : references;
        Findings = findings.IsDefault ? ImmutableArray<ChainFinding>.Empty : findings;
        Sha256 = sha256;
        PeakBufferBytes = peakBufferBytes;
    }

    /// <summary>Gets whether the upload may be stored and used.</summary>
    public TrustDecision Verdict { get; }

    /// <summary>Gets whether <see cref="Verdict"/> is <see cref="TrustDecision.Accepted"/>.</summary>
    public bool IsAccepted => Verdict == TrustDecision.Accepted;

    /// <summary>Gets why the upload was accepted or rejected.</summary>
    public UploadVerdictReason Reason { get; }

    /// <summary>Gets the format the upload was read as: the declared one, or else the probed one.</summary>
    public ImageFormat Format { get; }

    /// <summary>Gets where <see cref="Format"/> came from: <see cref="FormatSource.Declared"/> or <see cref="FormatSource.Probed"/>.</summary>
    public FormatSource FormatSource { get; }

    /// <summary>Gets what qemu 7.2's probe says the content is, whatever format was used.</summary>
    public ImageFormat ProbedFormat => Detection.QemuFormat;

    /// <summary>
    /// Gets every format signature in the retained head and tail (a fixed VHD's footer, a DMG trailer, a polyglot's
    /// second header), beyond what qemu's probe sees.
    /// </summary>
    public ThoroughDetection Detection { get; }

    /// <summary>Gets the format the caller declared, or <see langword="null"/> when it was probed.</summary>
    public ImageFormat? DeclaredFormat => FormatSource == FormatSource.Declared ? Format : null;

    /// <summary>Gets the number of bytes the upload carried.</summary>
    public long Length { get; }

    /// <summary>Gets the guest-visible size (qemu's <c>virtual-size</c>), or <see langword="null"/> when the header could not be read.</summary>
    public long? VirtualSize => Layer?.VirtualSize;

    /// <summary>
    /// Gets every file the image names (backing file first), classified, with role and recorded format. Empty
    /// for a declared raw upload, whose content is guest data. Filled even when the header could not be fully
    /// read because describing it needed one of these files (a VMDK descriptor's extents).
    /// </summary>
    public ImmutableArray<ImageReference> References { get; }

    /// <summary>Gets the findings, with the stable codes of <see cref="FindingCodes"/>; every one concerns layer 0.</summary>
    public ImmutableArray<ChainFinding> Findings { get; }

    /// <summary>
    /// Gets the SHA-256 of the whole upload (lower-case hex) when <see cref="UploadInspectionOptions.ComputeSha256"/>
    /// was set, or <see langword="null"/>.
    /// </summary>
    public string? Sha256 { get; }

    /// <summary>
    /// Gets the header facts as the chain model holds them (cluster size, encryption, format-specific facts), or
    /// <see langword="null"/> when the header could not be read.
    /// </summary>
    public ChainLayer? Layer { get; }

    /// <summary>The most buffer memory the inspection held at once (head and tail windows), for tests of the bound.</summary>
    internal long PeakBufferBytes { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Verdict} ({Reason}): {Format.GetQemuName()} ({FormatSource}), {Length} bytes";
}
