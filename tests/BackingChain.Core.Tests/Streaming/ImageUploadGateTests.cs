using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Threading.Tasks;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Tests.Properties;
using BackingChain.Trust;
using Microsoft.Extensions.Logging;

namespace BackingChain.Tests.Streaming;

public sealed class ImageUploadGateTests
{
    private static PipeReader Over(byte[] data) => PipeReader.Create(new MemoryStream(data));

    [Fact]
    public async Task Inspect_service_settings_come_from_the_gate_upload_facts_from_the_call()
    {
        using var store = new ScratchDirectory();
        File.WriteAllBytes(store["base.raw"], new byte[4096]);
        var gate = new ImageUploadGate(new UploadInspectionOptions
        {
            Policy = new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [store.Path] },
            AllowEmpty = true,
        });
        byte[] overlay = HostileBytesProperties.Qcow2("base.raw", "raw");

        // The policy's trusted root is the gate's; where the overlay will live (so what "base.raw" means) is the call's.
        UploadInspection placed = await gate.InspectAsync(Over(overlay), store["top.qcow2"], ImageFormat.Qcow2, overlay.Length);
        UploadInspection unplaced = await gate.InspectAsync(Over(overlay), declaredFormat: ImageFormat.Qcow2);
        UploadInspection shortened = await gate.InspectAsync(Over(overlay), store["top.qcow2"], ImageFormat.Qcow2, overlay.Length + 1);
        UploadInspection empty = await gate.InspectAsync(Over([]));

        Assert.True(placed.IsAccepted, UploadTestHelpers.Describe(placed));
        Assert.Equal(2, placed.Report.Layers.Length);
        Assert.False(unplaced.IsAccepted);
        Assert.Equal(TrustReason.LengthMismatch, shortened.Reason);
        Assert.True(empty.IsAccepted);
    }

    [Fact]
    public async Task Inspect_default_gate_refuses_empty_and_hostile_uploads()
    {
        var gate = new ImageUploadGate();

        UploadInspection empty = await gate.InspectAsync(Over([]));
        UploadInspection hostile = await gate.InspectAsync(Over(HostileBytesProperties.Qcow2("/etc/shadow", null)), "upload.img");

        Assert.Equal(TrustReason.EmptyUpload, empty.Reason);
        Assert.Equal(TrustReason.ProbedWithUntrustedReferences, hostile.Reason);
        Assert.Same(TrustPolicy.Untrusted, gate.Policy);
    }

    [Fact]
    public async Task Inspect_with_destination_stores_every_byte()
    {
        byte[] data = Enumerable.Range(0, 70_000).Select(i => (byte)(i * 13)).ToArray();
        using var stored = new MemoryStream();

        UploadInspection inspection = await new ImageUploadGate().InspectAsync(Over(data), stored, "disk.raw", ImageFormat.Raw, data.Length);

        Assert.True(inspection.IsAccepted, UploadTestHelpers.Describe(inspection));
        Assert.Equal(data, stored.ToArray());
    }

    [Fact]
    public async Task Inspect_logs_acceptance_as_information_and_rejection_as_warning_with_the_stable_reason()
    {
        var logger = new ListLogger();
        var gate = new ImageUploadGate(logger: logger);

        await gate.InspectAsync(Over(new byte[1024]), "good.raw");
        await gate.InspectAsync(Over(HostileBytesProperties.Qcow2("/etc/shadow", null)), "bad.img");

        // The walk an upload starts logs through the gate's logger too (issue 19: upload walks logged nothing); the
        // gate's own verdict lines are the ones checked here.
        Assert.Contains(logger.Entries, e => e.Message.StartsWith("Read layer", StringComparison.Ordinal));
        Assert.Collection(
            logger.Entries.Where(e => !e.Message.StartsWith("Read layer", StringComparison.Ordinal) && !e.Message.StartsWith("Chain of", StringComparison.Ordinal) && !e.Message.StartsWith("Did not open", StringComparison.Ordinal)),
            e => Assert.Equal((LogLevel.Information, true), (e.Level, e.Message.Contains("'good.raw'", StringComparison.Ordinal))),
            e => Assert.Equal((LogLevel.Warning, true), (e.Level, e.Message.Contains("probed-with-untrusted-references", StringComparison.Ordinal))));
    }

    [Fact]
    public async Task Inspect_failed_upload_is_logged_and_passed_on()
    {
        var logger = new ListLogger();
        var failing = PipeReader.Create(new FailingStream());

        await Assert.ThrowsAsync<IOException>(async () => await new ImageUploadGate(logger: logger).InspectAsync(failing, "cut.img"));

        LogEntry entry = Assert.Single(logger.Entries);
        Assert.Contains("'cut.img'", entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inspect_one_gate_many_uploads_at_once_each_gets_its_own_verdict()
    {
        var gate = new ImageUploadGate();
        byte[] hostile = HostileBytesProperties.Qcow2("/etc/shadow", null);
        var verdicts = new ConcurrentBag<(int Index, TrustReason Reason, long Length)>();

        await Parallel.ForEachAsync(Enumerable.Range(0, 64), async (i, cancellationToken) =>
        {
            byte[] upload = i % 2 == 0 ? hostile : new byte[1000 + i];
            UploadInspection inspection = await gate.InspectAsync(Over(upload), $"u{i}.img", cancellationToken: cancellationToken);
            verdicts.Add((i, inspection.Reason, inspection.Length));
        });

        Assert.Equal(64, verdicts.Count);
        foreach ((int index, TrustReason reason, long length) in verdicts)
        {
            Assert.Equal(index % 2 == 0 ? TrustReason.ProbedWithUntrustedReferences : TrustReason.ProbedRaw, reason);
            Assert.Equal(index % 2 == 0 ? hostile.Length : 1000 + index, length);
        }
    }

    internal sealed record LogEntry(LogLevel Level, string Message);

    internal sealed class ListLogger : ILogger<ImageUploadGate>
    {
        public List<LogEntry> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries)
            {
                Entries.Add(new LogEntry(logLevel, formatter(state, exception)));
            }
        }
    }

    private sealed class FailingStream : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new IOException("connection reset");

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
