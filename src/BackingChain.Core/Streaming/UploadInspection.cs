using System.Collections.Immutable;
using BackingChain.Chain;
using BackingChain.Detection;
using BackingChain.Trust;

namespace BackingChain.Streaming;

/// <summary>
/// What <see cref="ImageUploadGate"/> learned from one upload: its format and where that came from, its
/// length, the files it names, and the verdict — a <see cref="TrustReport"/> made by the same judge as for images
/// on disk. Immutable.
/// </summary>
public sealed class UploadInspection
{
    internal UploadInspection(TrustReport report, ImageFormat format, FormatSource formatSource, ThoroughDetection detection, long length, string? sha256, long peakBufferBytes)
    {
        Report = report;
        Format = format;
        FormatSource = formatSource;
        Detection = detection;
        Length = length;
        Sha256 = sha256;
        PeakBufferBytes = peakBufferBytes;
    }

    /// <summary>Gets the verdict on the chain the upload heads: the upload as layer 0, and any trusted file it names below it.</summary>
    public TrustReport Report { get; }

    /// <summary>Gets whether the upload may be stored and used.</summary>
    internal TrustDecision Verdict => Report.IsSafe ? TrustDecision.Accepted : TrustDecision.Rejected;

    /// <summary>Gets whether the upload was accepted: the report's verdict is safe (<see cref="TrustReport.IsSafe"/>).</summary>
    public bool IsAccepted => Report.IsSafe;

    /// <summary>Gets why the upload was accepted or rejected (<see cref="TrustReport.Reason"/>).</summary>
    public TrustReason Reason => Report.Reason;

    /// <summary>Gets the format the upload was read as: the declared one, or else the probed one.</summary>
    public ImageFormat Format { get; }

    /// <summary>Gets where <see cref="Format"/> came from: <see cref="FormatSource.Declared"/> or <see cref="FormatSource.Probed"/>.</summary>
    public FormatSource FormatSource { get; }

    /// <summary>Gets what qemu 7.2's probe says the content is, whatever format was used.</summary>
    public ImageFormat ProbedFormat => Detection.QemuFormat;

    /// <summary>
    /// Gets every format signature in the retained head and tail (a fixed VHD's footer, a DMG trailer, an ISO 9660
    /// volume descriptor, a polyglot's second header), beyond what qemu's probe sees.
    /// </summary>
    public ThoroughDetection Detection { get; }

    /// <summary>Gets the format the caller declared, or <see langword="null"/> when it was probed.</summary>
    public ImageFormat? DeclaredFormat => FormatSource == FormatSource.Declared ? Format : null;

    /// <summary>Gets the number of bytes the upload carried.</summary>
    public long Length { get; }

    /// <summary>Gets the guest-visible size (qemu's <c>virtual-size</c>), or <see langword="null"/> when the header could not be read.</summary>
    public long? VirtualSize => Layer?.VirtualSize;

    /// <summary>
    /// Gets every file the upload names (backing file first), classified, with role and recorded format. Empty for a
    /// declared raw upload, whose content is guest data. Filled even when the header could not be fully read because
    /// describing it needed one of these files (a VMDK descriptor's extents the policy refused).
    /// </summary>
    public ImmutableArray<ImageReference> References
    {
        get
        {
            if (Layer is { } layer)
            {
                return layer.References;
            }

            var references = ImmutableArray.CreateBuilder<ImageReference>();
            foreach (ReferenceDecision decision in Report.Chain.Decisions)
            {
                if (decision.LayerIndex == 0)
                {
                    references.Add(decision.Reference);
                }
            }

            return references.ToImmutable();
        }
    }

    /// <summary>Gets the findings, with the stable codes of <see cref="FindingCodes"/>.</summary>
    internal ImmutableArray<ChainFinding> Findings => Report.Findings;

    /// <summary>
    /// Gets the SHA-256 of the whole upload (lower-case hex) when <see cref="UploadInspectionOptions.ComputeSha256"/>
    /// was set, or <see langword="null"/>.
    /// </summary>
    public string? Sha256 { get; }

    /// <summary>
    /// Gets the header facts as the chain model holds them (cluster size, encryption, format-specific facts), or
    /// <see langword="null"/> when the header could not be read.
    /// </summary>
    public ChainLayer? Layer => Report.Chain.Layers.IsEmpty ? null : Report.Chain.Layers[0];

    /// <summary>The most buffer memory the inspection held at once (head and tail windows), for tests of the bound.</summary>
    internal long PeakBufferBytes { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Verdict} ({Reason}): {Format.GetQemuName()} ({FormatSource}), {Length} bytes";
}
