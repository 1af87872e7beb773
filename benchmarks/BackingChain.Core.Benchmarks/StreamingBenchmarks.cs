using System;
using System.IO;
using System.IO.Pipelines;
using System.Threading.Tasks;
using BackingChain.Streaming;
using BenchmarkDotNet.Attributes;

namespace BackingChain.Benchmarks;

/// <summary>
/// The upload gate's throughput: a 64 MiB qcow2 upload (the fixture's header, then zeros) read from a
/// <see cref="PipeReader"/> in 64 KiB segments and copied to a destination, against the same pipe copied with no
/// inspection (the baseline). Target (docs/design.md): limited by the pipe, so Ratio close to 1; memory bounded by
/// the head and tail windows (4 MiB + 64 KiB by default), not by the upload's size.
/// </summary>
public class StreamingBenchmarks
{
    private const int SegmentSize = 64 * 1024;
    private readonly UploadInspectionOptions _options = new() { Name = "upload.qcow2" };
    private byte[] _upload = [];

    [Params(64)]
    public int UploadMiB { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _upload = new byte[UploadMiB << 20];
        Fixtures.Head("qcow2-v3.head").CopyTo(_upload, 0);
    }

    /// <summary>The pass-through alone: read every segment and write it on, as the inspector does.</summary>
    [Benchmark(Baseline = true)]
    public async Task PipeCopyOnly()
    {
        PipeReader reader = Open();
        while (true)
        {
            ReadResult result = await reader.ReadAsync().ConfigureAwait(false);
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                await Stream.Null.WriteAsync(segment).ConfigureAwait(false);
            }

            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        await Stream.Null.FlushAsync().ConfigureAwait(false);
        await reader.CompleteAsync().ConfigureAwait(false);
    }

    [Benchmark]
    public async Task<UploadInspection> InspectAndCopy()
    {
        PipeReader reader = Open();
        UploadInspection inspection = await ImageUploadInspector.InspectAsync(reader, Stream.Null, _options).ConfigureAwait(false);
        await reader.CompleteAsync().ConfigureAwait(false);
        return inspection;
    }

    private PipeReader Open() =>
        PipeReader.Create(new MemoryStream(_upload, writable: false), new StreamPipeReaderOptions(bufferSize: SegmentSize));
}
