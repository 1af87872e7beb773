using System;
using System.IO;
using System.IO.Pipelines;
using System.Threading.Tasks;
using BackingChain.Interop;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Interop;

/// <summary>
/// Every writer has an asynchronous form that never writes synchronously (ASP.NET Core refuses synchronous writes to a
/// response body by default) and writes exactly what the synchronous form writes.
/// </summary>
public sealed class AsyncWriterTests
{
    [QemuImgFact]
    public async Task The_json_and_xml_writers_write_the_same_bytes_without_one_synchronous_write()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = new TrustPolicy { TrustedRoots = [dir.Path] } });
        TrustReport report = resolver.Check(dir["top.qcow2"], ImageFormat.Qcow2);
        Assert.True(report.IsSafe);

        await Same(s => TrustReportJson.Write(s, report), s => TrustReportJson.WriteAsync(s, report));
        await Same(s => QemuImgInfoJson.Write(s, report.Chain, backingChain: true), s => QemuImgInfoJson.WriteAsync(s, report.Chain, backingChain: true));
        await Same(s => QemuImgInfoJson.Write(s, report.Chain, backingChain: false), s => QemuImgInfoJson.WriteAsync(s, report.Chain, backingChain: false));
        await Same(s => s.Write(System.Text.Encoding.UTF8.GetBytes(LibvirtDiskXml.ToXml(report))), s => LibvirtDiskXml.WriteAsync(s, report));

        byte[] image = File.ReadAllBytes(dir["base.raw"]);
        UploadInspection inspection = await ImageUploadInspector.InspectAsync(PipeReader.Create(new MemoryStream(image)));
        await Same(s => UploadInspectionJson.Write(s, inspection), s => UploadInspectionJson.WriteAsync(s, inspection));
    }

    [Fact]
    public void The_test_stream_refuses_synchronous_writes()
    {
        // Otherwise the test above could not fail.
        using var stream = new AsyncOnlyStream();
        Assert.Throws<InvalidOperationException>(() => stream.Write([1], 0, 1));
        Assert.Throws<InvalidOperationException>(() => stream.WriteByte(1));
        Assert.Throws<InvalidOperationException>(() => stream.Flush());
    }

    private static async Task Same(Action<Stream> synchronous, Func<Stream, Task> asynchronous)
    {
        using var expected = new MemoryStream();
        synchronous(expected);
        using var actual = new AsyncOnlyStream();
        await asynchronous(actual);
        Assert.Equal(System.Text.Encoding.UTF8.GetString(expected.ToArray()), System.Text.Encoding.UTF8.GetString(actual.ToArray()));
    }

    /// <summary>A response body as Kestrel gives it by default: synchronous writes and flushes throw.</summary>
    private sealed class AsyncOnlyStream : MemoryStream
    {
        private const string Message = "Synchronous operations are disallowed.";

        public override void Write(byte[] buffer, int offset, int count) => throw new InvalidOperationException(Message);

        public override void Write(ReadOnlySpan<byte> buffer) => throw new InvalidOperationException(Message);

        public override void WriteByte(byte value) => throw new InvalidOperationException(Message);

        public override void Flush() => throw new InvalidOperationException(Message);

        public override Task WriteAsync(byte[] buffer, int offset, int count, System.Threading.CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, System.Threading.CancellationToken cancellationToken = default)
        {
            byte[] copy = buffer.ToArray();
            base.Write(copy, 0, copy.Length);
            return ValueTask.CompletedTask;
        }

        public override Task FlushAsync(System.Threading.CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
