using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;
using BackingChain.Streaming;
using BackingChain.Trust;

namespace BackingChain.Telemetry;

/// <summary>
/// The names under which the library traces and measures, through the BCL's <see cref="ActivitySource"/> and
/// <see cref="System.Diagnostics.Metrics.Meter"/> so that OpenTelemetry (or <c>dotnet-counters</c>) sees them with no extra package:
/// <c>AddSource(BackingChainTelemetry.ActivitySourceName)</c> and <c>AddMeter(BackingChainTelemetry.MeterName)</c>.
/// </summary>
/// <remarks>
/// <para>Every upload judged by <see cref="ImageUploadGate"/> is one <c>BackingChain.InspectUpload</c> activity and
/// adds to the instruments below. Tags use the stable spellings of <see cref="StableNames"/>, so dashboards keep
/// working when messages change. The instrument and tag names are part of the library's promise, like its finding
/// codes, and are the public constants below, so that dashboards and tests need not spell them.</para>
/// <list type="table">
/// <listheader><term>instrument</term><description>what it counts</description></listheader>
/// <item><term><c>backingchain.images.judged</c> (counter, <c>{image}</c>)</term><description>uploads judged; tags <c>backingchain.verdict</c> (<c>safe</c>, <c>unsafe</c>) and <c>backingchain.reason</c></description></item>
/// <item><term><c>backingchain.images.rejected</c> (counter, <c>{image}</c>)</term><description>uploads rejected; tags <c>backingchain.reason</c> and <c>backingchain.format</c> (qemu's name of the format read)</description></item>
/// <item><term><c>backingchain.upload.bytes</c> (counter, <c>By</c>)</term><description>upload bytes read through the gate</description></item>
/// <item><term><c>backingchain.chain.depth</c> (histogram, <c>{layer}</c>)</term><description>layers of the chain each upload heads</description></item>
/// </list>
/// </remarks>
public static class BackingChainTelemetry
{
    /// <summary>The name of the library's <see cref="ActivitySource"/>: <c>BackingChain</c>.</summary>
    public const string ActivitySourceName = "BackingChain";

    /// <summary>The name of the library's <see cref="System.Diagnostics.Metrics.Meter"/>: <c>BackingChain</c>.</summary>
    public const string MeterName = "BackingChain";

    /// <summary>The activity that spans one upload's inspection, from the first byte read to the verdict.</summary>
    public const string InspectUploadActivityName = "BackingChain.InspectUpload";

    /// <summary>The counter of images judged.</summary>
    public const string ImagesJudgedName = "backingchain.images.judged";

    /// <summary>The counter of images rejected, by reason.</summary>
    public const string ImagesRejectedName = "backingchain.images.rejected";

    /// <summary>The counter of bytes inspected.</summary>
    public const string BytesInspectedName = "backingchain.upload.bytes";

    /// <summary>The histogram of walk depths (layers in the judged chain).</summary>
    public const string WalkDepthName = "backingchain.chain.depth";

    /// <summary>The tag carrying the verdict: <c>safe</c> or <c>unsafe</c>.</summary>
    public const string VerdictTag = "backingchain.verdict";

    /// <summary>The tag carrying the reason, spelled as <see cref="StableNames.GetStableName(TrustReason)"/> spells it.</summary>
    public const string ReasonTag = "backingchain.reason";

    /// <summary>The tag carrying the format the upload was read as (qemu's name).</summary>
    public const string FormatTag = "backingchain.format";

    private static readonly string? Version = typeof(BackingChainTelemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;

    /// <summary>Shared by every caller: the BCL's listeners subscribe by name, and one source per process is the convention.</summary>
    internal static ActivitySource Source { get; } = new(ActivitySourceName, Version);

    internal static Meter Meter { get; } = new(MeterName, Version);

    private static readonly Counter<long> ImagesJudged = Meter.CreateCounter<long>(ImagesJudgedName, "{image}", "Images judged by the upload gate.");

    private static readonly Counter<long> ImagesRejected = Meter.CreateCounter<long>(ImagesRejectedName, "{image}", "Images the upload gate rejected, by reason.");

    private static readonly Counter<long> BytesInspected = Meter.CreateCounter<long>(BytesInspectedName, "By", "Bytes of uploads read through the gate.");

    private static readonly Histogram<int> WalkDepth = Meter.CreateHistogram<int>(WalkDepthName, "{layer}", "Layers in the chain an upload heads.");

    /// <summary>Records one finished inspection on the instruments and, when traced, on its activity.</summary>
    /// <param name="activity">The inspection's activity, when traced.</param>
    /// <param name="accepted">Whether the upload was accepted.</param>
    /// <param name="reason">The verdict's reason, by its stable name.</param>
    /// <param name="format">The upload's format, by its qemu name.</param>
    /// <param name="length">The bytes read.</param>
    /// <param name="depth">The layers of the chain it heads.</param>
    // Plain values rather than the inspection: telemetry sits below the gate and names none of its types.
    internal static void Record(Activity? activity, bool accepted, string reason, string format, long length, int depth)
    {
        string verdict = accepted ? "safe" : "unsafe";
        var verdictTag = new KeyValuePair<string, object?>(VerdictTag, verdict);
        var reasonTag = new KeyValuePair<string, object?>(ReasonTag, reason);
        ImagesJudged.Add(1, verdictTag, reasonTag);
        if (!accepted)
        {
            ImagesRejected.Add(1, reasonTag, new KeyValuePair<string, object?>(FormatTag, format));
        }

        BytesInspected.Add(length);
        WalkDepth.Record(depth);

        if (activity is not null)
        {
            activity.SetTag(VerdictTag, verdict);
            activity.SetTag(ReasonTag, reason);
            activity.SetTag(FormatTag, format);
            activity.SetTag(BytesInspectedName, length);
            activity.SetTag(WalkDepthName, depth);
            activity.SetStatus(accepted ? ActivityStatusCode.Ok : ActivityStatusCode.Unset);
        }
    }
}
