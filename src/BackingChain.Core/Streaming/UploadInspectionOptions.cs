using System;
using System.Collections.Immutable;
using BackingChain.Sources;
using BackingChain.Trust;
using Microsoft.Extensions.Logging;
using BackingChain.Walk;

namespace BackingChain.Streaming;

/// <summary>Settings of <see cref="ImageUploadGate"/>. The defaults are the safe ones. Immutable once built (<c>init</c> only), so one instance may be shared by any number of threads.</summary>
public sealed class UploadInspectionOptions
{
    /// <summary>The default head window: 4 MiB, enough for a qcow2 cluster 0 of the largest cluster size (2 MiB) and for the regions VHDX and VMDK keep near the start.</summary>
    internal const int DefaultHeadWindowLength = 4 * 1024 * 1024;

    /// <summary>The default tail window: 64 KiB, enough for the trailers kept at the end (VHD footer, DMG <c>koly</c>, VMDK stream-optimized footer).</summary>
    internal const int DefaultTailWindowLength = 64 * 1024;

    /// <summary>The largest head or tail window that may be configured: 64 MiB.</summary>
    internal const int MaxWindowLength = 64 * 1024 * 1024;

    /// <summary>The smallest head window: the 512 bytes qemu's probe reads.</summary>
    internal const int MinHeadWindowLength = 512;

    private readonly int _headWindowLength = DefaultHeadWindowLength;
    private readonly int _tailWindowLength = DefaultTailWindowLength;
    private readonly long? _expectedLength;
    private readonly string? _name;

    /// <summary>Creates the default settings: <see cref="TrustPolicy.Untrusted"/>, local files, the walk's default depth cap and deadline, default windows.</summary>
    public UploadInspectionOptions()
    {
    }

    /// <summary>
    /// Creates settings whose walk (over the files an upload names) is <paramref name="walk"/>'s: its policy, source
    /// providers, depth cap and deadline, taken as they are, so that an upload and a stored chain are walked and judged
    /// alike. The upload's own settings (windows, hashing, empty uploads) keep their defaults; set them with an object
    /// initializer.
    /// </summary>
    /// <param name="walk">The walk's settings, for example the resolver's of the same service.</param>
    /// <exception cref="ArgumentNullException"><paramref name="walk"/> is <see langword="null"/>.</exception>
    public UploadInspectionOptions(ImageChainResolverOptions walk)
    {
        ArgumentNullException.ThrowIfNull(walk);
        Walk = walk.Walk;
    }

    /// <summary>Gets the shared default options: format probed, <see cref="TrustPolicy.Untrusted"/>, default windows.</summary>
    public static UploadInspectionOptions Default { get; } = new();

    /// <summary>
    /// Gets the format the caller declares for the upload (like <c>qemu-img -f</c>), or <see langword="null"/> to
    /// probe it. A declared format is used whatever the content says; a declared raw upload names nothing.
    /// </summary>
    internal ImageFormat? DeclaredFormat { get; init; }

    /// <summary>
    /// Gets the name the upload will be stored under, or <see langword="null"/>. Relative references are resolved
    /// against its directory (qemu's rule) before the policy judges them; without a name they cannot be resolved
    /// and only the policy's <see cref="TrustPolicy.Callback"/> can trust them. Also used in messages.
    /// </summary>
    /// <exception cref="ArgumentException">The value is empty.</exception>
    internal string? Name
    {
        get => _name;
        init
        {
            if (value is not null)
            {
                ArgumentException.ThrowIfNullOrEmpty(value);
            }

            _name = value;
        }
    }

    /// <summary>
    /// Gets the trust policy the upload is judged by, exactly as an image on disk would be. Default
    /// <see cref="TrustPolicy.Untrusted"/>: the <see cref="TrustPosture.UntrustedImage"/> posture with no trusted
    /// location, so an upload that names any file is rejected. Give a policy in the untrusted-image posture with
    /// trusted roots to accept overlays of bases you keep there; a <see cref="TrustPosture.Host"/> policy would take a
    /// declared format's references as the administrator's, which an uploader is not.
    /// </summary>
    public TrustPolicy Policy { get; init; } = TrustPolicy.Untrusted;

    /// <summary>Gets where the files an upload names are opened from, when the policy allows it. Default: local files.</summary>
    public ImmutableArray<IImageSourceProvider> SourceProviders { get; init; } = [FileImageSourceProvider.Instance];

    /// <summary>
    /// The formats the service recorded for its stored images, or <see langword="null"/> (the default) for none. An
    /// upload is never looked up in it; a stored image the upload names as its backing file is read as qemu would read
    /// it (the upload's recorded backing format, else probed), with a <c>format-mismatch</c> finding where that is not
    /// the format recorded for it (see <see cref="IImageFormatCatalog"/>).
    /// </summary>
    public IImageFormatCatalog? FormatCatalog { get; init; }

    /// <summary>
    /// Gets the most layers the chain an upload heads may have, the upload included: the same setting, with the same
    /// range, as <see cref="ImageChainResolverOptions.MaxDepth"/>. Default 200.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is out of the resolver's range.</exception>
    public int MaxDepth
    {
        get;

        // The resolver's options hold the rule; asking them keeps one definition of what is in range.
        init => field = new ImageChainResolverOptions { MaxDepth = value }.MaxDepth;
    } = ImageChainResolverOptions.DefaultMaxDepth;

    /// <summary>
    /// Gets the deadline of the walk over the files an upload names (the upload's own bytes are read as the caller
    /// sends them, and its cancellation token bounds that): the same setting as
    /// <see cref="ImageChainResolverOptions.Timeout"/>. Default two minutes.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is neither positive nor infinite.</exception>
    public TimeSpan Timeout
    {
        get;
        init => field = new ImageChainResolverOptions { Timeout = value }.Timeout;
    } = ImageChainResolverOptions.Default.Timeout;

    /// <summary>
    /// Gets the number of leading bytes kept for the format reader. Default 4 MiB (a qcow2 cluster 0 of the largest
    /// cluster size, 2 MiB, and the regions VHDX and VMDK keep near the start); between 512 (the bytes qemu's probe
    /// reads) and 64 MiB. A raw upload keeps only the 512 bytes of the probe.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is out of range.</exception>
    public int HeadWindowLength
    {
        get => _headWindowLength;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, MinHeadWindowLength);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxWindowLength);
            _headWindowLength = value;
        }
    }

    /// <summary>
    /// Gets the number of trailing bytes kept (in a ring, while streaming) for formats whose metadata is at the end.
    /// Default 64 KiB (the trailers kept at the end: VHD footer, DMG <c>koly</c>, VMDK stream-optimized footer);
    /// between 0 and 64 MiB.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is out of range.</exception>
    public int TailWindowLength
    {
        get => _tailWindowLength;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxWindowLength);
            _tailWindowLength = value;
        }
    }

    /// <summary>
    /// Gets whether to compute the SHA-256 of the whole upload as it streams past (reported in
    /// <see cref="UploadInspection.Sha256"/>, ready to be pinned with <see cref="TrustPolicy.PinnedImages"/>
    /// once the upload is stored). Default <see langword="false"/>: hashing costs CPU on every byte.
    /// </summary>
    public bool ComputeSha256 { get; init; }

    /// <summary>
    /// Gets whether an upload of no bytes at all may be accepted (as an empty raw image). Default
    /// <see langword="false"/>: an empty upload is almost always a client that failed before sending, and storing it
    /// would put a zero-length disk where an image was expected, so it is rejected with
    /// <see cref="TrustReason.EmptyUpload"/>.
    /// </summary>
    public bool AllowEmpty { get; init; }

    /// <summary>
    /// Gets whether an upload stored in a file keeps its holes, as <c>cp --sparse=always</c> and
    /// <c>qemu-img convert -S 4k</c> do. Default <see langword="true"/>: when the destination is a writable
    /// <see cref="System.IO.FileStream"/> on a regular file (its type read with <c>fstat</c>, on Linux), every all-zero 4 KiB block (aligned to the file offset) is skipped rather than
    /// written, the data between them goes out in writes of up to 1 MiB, the file is cut at the position the upload
    /// starts from and ends at the upload's length, so it reads back byte for byte as sent while a mostly empty disk
    /// takes only its data's room. Any other destination (a pipe, a block or character device, a network stream, a
    /// <see cref="System.IO.MemoryStream"/>, any file on a system other than Linux) gets every byte whatever this says. Set <see langword="false"/> to have every zero written (a file meant to be
    /// fully allocated).
    /// </summary>
    public bool SparseDestination { get; init; } = true;

    /// <summary>
    /// A copy of these settings for one upload: the service-wide settings stay, the upload's own facts replace theirs.
    /// </summary>
    internal UploadInspectionOptions ForUpload(string? name, ImageFormat? declaredFormat, long? expectedLength, ILogger? logger) => new()
    {
        // Every setting of the service, copied: a setting left out here silently falls back to its default. The
        // walk's settings go together (WalkSettings), so a new one cannot be missed here.
        Walk = Walk,
        HeadWindowLength = HeadWindowLength,
        TailWindowLength = TailWindowLength,
        ComputeSha256 = ComputeSha256,
        AllowEmpty = AllowEmpty,
        SparseDestination = SparseDestination,
        Name = name,
        DeclaredFormat = declaredFormat,
        ExpectedLength = expectedLength,
        Logger = logger,
    };

    /// <summary>Every setting the walk over what an upload names takes, read or written at once (<see cref="WalkSettings"/>).</summary>
    internal WalkSettings Walk
    {
        get => new(Policy, SourceProviders, MaxDepth, Timeout, FormatCatalog);
        init
        {
            Policy = value.Policy;
            SourceProviders = value.SourceProviders;
            MaxDepth = value.MaxDepth;
            Timeout = value.Timeout;
            FormatCatalog = value.FormatCatalog;
        }
    }

    /// <summary>Gets where the walk over what one upload names logs: the gate's logger, or <see langword="null"/>.</summary>
    internal ILogger? Logger { get; init; }

    /// <summary>
    /// Gets the length the sender announced (an HTTP <c>Content-Length</c>, for example), or <see langword="null"/>.
    /// An upload that ends before it, or carries more, is rejected with <see cref="TrustReason.LengthMismatch"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    internal long? ExpectedLength
    {
        get => _expectedLength;
        init
        {
            if (value is long length)
            {
                ArgumentOutOfRangeException.ThrowIfNegative(length);
            }

            _expectedLength = value;
        }
    }
}
