using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Threading.Tasks;
using BackingChain.Streaming;
using BackingChain.Telemetry;
using BackingChain.Tests.Properties;

namespace BackingChain.Tests.Telemetry;

/// <summary>
/// Other tests inspect uploads in parallel, so each test here picks upload lengths nobody else uses and looks for
/// its own measurements, and traces under a parent activity of its own.
/// </summary>
public sealed class BackingChainTelemetryTests
{
    [Fact]
    public async Task Inspection_is_measured_under_the_backing_chain_meter()
    {
        var measurements = new ConcurrentBag<(string Instrument, long Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BackingChainTelemetry.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => measurements.Add((instrument.Name, value, ToDictionary(tags))));
        listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => measurements.Add((instrument.Name, value, ToDictionary(tags))));
        listener.Start();

        // An odd length (raw, accepted) and a hostile qcow2 padded to another odd length (rejected).
        const int AcceptedLength = 77_777;
        byte[] hostile = HostileBytesProperties.Qcow2("/etc/shadow", null);
        Array.Resize(ref hostile, 66_661);
        UploadInspection accepted = await ImageUploadInspector.InspectAsync(Over(new byte[AcceptedLength]));
        UploadInspection rejected = await ImageUploadInspector.InspectAsync(Over(hostile));
        listener.Dispose();

        Assert.True(accepted.IsAccepted);
        Assert.False(rejected.IsAccepted);
        long[] bytes = [.. measurements.Where(m => m.Instrument == BackingChainTelemetry.BytesInspectedName).Select(m => m.Value)];
        Assert.Contains(AcceptedLength, bytes);
        Assert.Contains(66_661, bytes);
        Assert.Contains(measurements, m => m.Instrument == BackingChainTelemetry.ImagesJudgedName
            && Equals(m.Tags[BackingChainTelemetry.VerdictTag], "safe") && Equals(m.Tags[BackingChainTelemetry.ReasonTag], "probed-raw"));
        Assert.Contains(measurements, m => m.Instrument == BackingChainTelemetry.ImagesJudgedName
            && Equals(m.Tags[BackingChainTelemetry.VerdictTag], "unsafe") && Equals(m.Tags[BackingChainTelemetry.ReasonTag], "probed-with-untrusted-references"));
        Assert.Contains(measurements, m => m.Instrument == BackingChainTelemetry.ImagesRejectedName
            && Equals(m.Tags[BackingChainTelemetry.ReasonTag], "probed-with-untrusted-references")
            && m.Tags.TryGetValue(BackingChainTelemetry.FormatTag, out object? format) && Equals(format, "qcow2"));
        Assert.Equal(
            ("backingchain.images.rejected", "backingchain.reason", "backingchain.format"),
            (BackingChainTelemetry.ImagesRejectedName, BackingChainTelemetry.ReasonTag, BackingChainTelemetry.FormatTag));
        Assert.DoesNotContain(measurements, m => m.Instrument == BackingChainTelemetry.ImagesRejectedName
            && Equals(m.Tags[BackingChainTelemetry.ReasonTag], "probed-raw"));
        Assert.Contains(measurements, m => m.Instrument == BackingChainTelemetry.WalkDepthName && m.Value == 1);
    }

    [Fact]
    public async Task Inspection_is_one_activity_of_the_backing_chain_source_with_the_verdict_as_tags()
    {
        var activities = new ConcurrentBag<Activity>();
        using var parentSource = new ActivitySource("BackingChain.Tests.Telemetry");
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is BackingChainTelemetry.ActivitySourceName or "BackingChain.Tests.Telemetry",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activities.Add,
        };
        ActivitySource.AddActivityListener(listener);

        string parentId;
        using (Activity parent = parentSource.StartActivity("test")!)
        {
            parentId = parent.Id!;
            await new ImageUploadGate().InspectAsync(Over(HostileBytesProperties.Qcow2("/etc/shadow", null)), "hostile.img");
        }

        Activity inspect = Assert.Single(activities, a => a.ParentId == parentId);
        Assert.Equal(BackingChainTelemetry.InspectUploadActivityName, inspect.OperationName);
        Assert.Equal(BackingChainTelemetry.ActivitySourceName, inspect.Source.Name);
        Assert.Equal("unsafe", inspect.GetTagItem(BackingChainTelemetry.VerdictTag));
        Assert.Equal("probed-with-untrusted-references", inspect.GetTagItem(BackingChainTelemetry.ReasonTag));
        Assert.Equal("qcow2", inspect.GetTagItem(BackingChainTelemetry.FormatTag));
    }

    private static PipeReader Over(byte[] data) => PipeReader.Create(new MemoryStream(data));

    private static Dictionary<string, object?> ToDictionary(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var dictionary = new Dictionary<string, object?>();
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            dictionary[tag.Key] = tag.Value;
        }

        return dictionary;
    }
}
