using System;
using System.IO;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Trust;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackingChain.Streaming;

/// <summary>
/// The upload gate: inspects a forward-only upload (an HTTP request body, for example) as it streams past and says
/// what it is, what it names and whether it may be used, holding only a bounded window of it. One instance holds the
/// service-wide settings (policy, windows, empty uploads) and a logger, ready to be injected
/// (<c>services.AddBackingChain(…)</c>).
/// </summary>
/// <remarks>
/// <para>
/// <b>Memory.</b> Of the upload, only the first <see cref="UploadInspectionOptions.HeadWindowLength"/> bytes
/// (default 4 MiB; only the 4 KiB thorough detection looks at when the upload is raw) and the last
/// <see cref="UploadInspectionOptions.TailWindowLength"/> bytes (default 64 KiB, kept in a ring) are held, in
/// pooled arrays, so the buffers held at once never exceed head window + tail window + 64 KiB (each array
/// rounded up to the pool's power-of-two size), plus, while storing into a file, one pooled 1 MiB staging buffer
/// in which zero blocks are found and data is gathered into large writes. Every buffer the reader returns is consumed whole
/// (<c>AdvanceTo(buffer.End)</c>), so the pipe never accumulates the upload either. Once the upload ends, the
/// format reader runs over the retained bytes through the same code that reads files; a read outside the windows
/// is never satisfied by buffering more: it becomes an <c>unsupported-feature</c> finding and a rejection
/// (<see cref="TrustReason.MetadataOutsideWindow"/>). Readers take views of the retained bytes rather
/// than buffers of their own, so a header asking for a large range costs nothing.
/// </para>
/// <para>
/// <b>Verdict.</b> The upload is judged by the same walk, gate and judge as an image on disk
/// (<see cref="Walk.ImageChainResolver.CheckAsync(IImageSource, ImageFormat?, System.Threading.CancellationToken)"/>), under
/// <see cref="UploadInspectionOptions.Policy"/> — by default <see cref="TrustPolicy.Untrusted"/>, the
/// <see cref="TrustPosture.UntrustedImage"/> posture: the header is the uploader's even when the format is
/// declared, so every file it names must be trusted by location or pinned digest, and a trusted file it names is
/// opened and judged like any layer below (it must be present). A declared raw upload names nothing. A probed upload
/// whose content carries several formats' signatures (a polyglot, seen by thorough detection over the head and tail
/// windows) is refused. Beyond that, an upload is rejected when its length differs from
/// the expected length given to the call (<see cref="TrustReason.LengthMismatch"/>) or its metadata
/// lies outside the windows (<see cref="TrustReason.MetadataOutsideWindow"/>), or it is empty and
/// <see cref="UploadInspectionOptions.AllowEmpty"/> is not set (<see cref="TrustReason.EmptyUpload"/>). Every finding is reported;
/// <see cref="UploadInspection.Reason"/> is the report's reason.
/// </para>
/// <para>The inspector reads the pipe to its end — or, with the expected length given to the call, to the first
/// byte past the announced length — but does not complete it; the caller owns the reader.</para>
/// <para>
/// Each call is one upload: what only that upload knows (where it will be stored, the format its sender declares,
/// the length it announces) is passed to the call, and everything else comes from <see cref="Options"/>. The verdict
/// is the one judge's (<see cref="TrustReport"/>); the gate adds logging and nothing to the decision.
/// </para>
/// <para>
/// <b>Threads.</b> The gate holds only immutable settings and a logger, so one instance (a singleton) may inspect
/// any number of uploads at once; each call has its own windows and walk.
/// </para>
/// <para>
/// <b>Logs.</b> An accepted upload is logged at <see cref="LogLevel.Information"/>, a rejected one at
/// <see cref="LogLevel.Warning"/> with its stable reason (<see cref="StableNames.GetStableName(TrustReason)"/>), and an
/// upload that failed before it could be judged (a reset connection, a cancellation) at
/// <see cref="LogLevel.Information"/> before the exception is passed on.
/// </para>
/// </remarks>
public sealed class ImageUploadGate
{
    private const string UnnamedUpload = "(unnamed)";

    private readonly ILogger _logger;

    /// <summary>Creates a gate.</summary>
    /// <param name="options">The service-wide settings; <see cref="UploadInspectionOptions.Default"/> when <see langword="null"/>. Their name, declared format and expected length are ignored: each call gives its own.</param>
    /// <param name="logger">Where to log; nothing is logged when <see langword="null"/>.</param>
    public ImageUploadGate(UploadInspectionOptions? options = null, ILogger<ImageUploadGate>? logger = null)
    {
        Options = options ?? UploadInspectionOptions.Default;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    /// <summary>Gets the service-wide settings every upload is inspected with.</summary>
    public UploadInspectionOptions Options { get; }

    /// <summary>Gets the policy every upload is judged by (<see cref="UploadInspectionOptions.Policy"/>).</summary>
    public TrustPolicy Policy => Options.Policy;

    /// <summary>Reads an upload to its end, keeping only the header windows, and judges it.</summary>
    /// <param name="upload">The upload, e.g. ASP.NET Core's <c>Request.BodyReader</c>; read to its end, not completed.</param>
    /// <param name="name">Where the upload will be stored (relative references resolve against it), or <see langword="null"/>.</param>
    /// <param name="declaredFormat">The format the sender declares, or <see langword="null"/> to probe it.</param>
    /// <param name="expectedLength">The length the sender announced (<c>Content-Length</c>), or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the inspection.</param>
    /// <returns>The inspection and its verdict; problems with the image are findings, never exceptions.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="upload"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="expectedLength"/> is negative.</exception>
    /// <exception cref="OperationCanceledException">The inspection was canceled.</exception>
    /// <exception cref="IOException">The upload failed (for example, the connection was reset).</exception>
    public ValueTask<UploadInspection> InspectAsync(
        PipeReader upload, string? name = null, ImageFormat? declaredFormat = null, long? expectedLength = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(upload);
        return RunAsync(upload, null, Options.ForUpload(name, declaredFormat, expectedLength, _logger), cancellationToken);
    }

    /// <summary>Reads an upload to its end, copying every byte to <paramref name="destination"/> as it passes, and judges it.</summary>
    /// <param name="upload">The upload, e.g. ASP.NET Core's <c>Request.BodyReader</c>; read to its end, not completed.</param>
    /// <param name="destination">Where the upload is stored while it is judged (a temporary file); flushed, not disposed. Delete it when the upload is rejected. A seekable <see cref="FileStream"/> keeps the upload's holes and ends at the upload's length (<see cref="UploadInspectionOptions.SparseDestination"/>); any other stream gets every byte.</param>
    /// <param name="name">Where the upload will be stored once accepted (relative references resolve against it), or <see langword="null"/>.</param>
    /// <param name="declaredFormat">The format the sender declares, or <see langword="null"/> to probe it.</param>
    /// <param name="expectedLength">The length the sender announced (<c>Content-Length</c>), or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the inspection.</param>
    /// <returns>The inspection and its verdict; problems with the image are findings, never exceptions.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="upload"/> or <paramref name="destination"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="expectedLength"/> is negative.</exception>
    /// <exception cref="OperationCanceledException">The inspection was canceled.</exception>
    /// <exception cref="IOException">The upload or the destination failed.</exception>
    public ValueTask<UploadInspection> InspectAsync(
        PipeReader upload, Stream destination, string? name = null, ImageFormat? declaredFormat = null, long? expectedLength = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(upload);
        ArgumentNullException.ThrowIfNull(destination);
        return RunAsync(upload, destination, Options.ForUpload(name, declaredFormat, expectedLength, _logger), cancellationToken);
    }

    private async ValueTask<UploadInspection> RunAsync(PipeReader upload, Stream? destination, UploadInspectionOptions options, CancellationToken cancellationToken)
    {
        string name = options.Name ?? UnnamedUpload;
        UploadInspection inspection;
        try
        {
            inspection = destination is null
                ? await ImageUploadInspector.InspectAsync(upload, options, cancellationToken).ConfigureAwait(false)
                : await ImageUploadInspector.InspectAsync(upload, destination, options, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // Logged and passed on: the caller must still clean up what it stored, and only it knows how.
            GateLog.Abandoned(_logger, name, e.Message);
            throw;
        }

        // The arguments are formatted only when the level is on: a busy gate should not pay for logs nobody reads.
        if (inspection.IsAccepted)
        {
            if (_logger.IsEnabled(LogLevel.Information))
            {
                string format = inspection.Format.GetQemuName();
                string source = inspection.FormatSource.GetStableName();
                string reason = inspection.Reason.GetStableName();
                GateLog.Accepted(_logger, name, format, source, inspection.Length, reason);
            }
        }
        else if (_logger.IsEnabled(LogLevel.Warning))
        {
            string first = inspection.Findings.IsEmpty ? "none" : $"{inspection.Findings[0].Code}: {inspection.Findings[0].Message}";
            string reason = inspection.Reason.GetStableName();
            GateLog.Rejected(_logger, name, reason, inspection.Findings.Length, first);
        }

        return inspection;
    }
}
