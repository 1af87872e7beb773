using System;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Streaming;

internal static class UploadTestHelpers
{
    /// <summary>The segment sizes every upload is tried with: pathological, odd, a page, and a large read.</summary>
    public static readonly int[] ChunkSizes = [1, 7, 4096, 1024 * 1024];

    public static async Task<UploadInspection> InspectAsync(byte[] data, int chunkSize, UploadInspectionOptions? options = null)
    {
        ChunkedPipeReader reader = ChunkedPipeReader.Over(data, chunkSize);
        UploadInspection inspection = await ImageUploadInspector.InspectAsync(reader, options);

        // The inspector consumes every buffer whole: the pipe never holds more than the chunk it just handed out.
        Assert.True(reader.MaxBufferLength <= chunkSize, $"the pipe held {reader.MaxBufferLength} bytes with {chunkSize}-byte chunks");
        if (options?.ExpectedLength is long expected && expected < data.Length)
        {
            // Reading stops at the first byte past the announced length: at most the chunk that held it was handed out.
            Assert.InRange(reader.Produced, expected + 1, Math.Min(data.Length, expected + chunkSize));
        }
        else
        {
            Assert.Equal(data.Length, reader.Produced);
        }
        Assert.False(reader.IsCompletedByConsumer);
        return inspection;
    }

    /// <summary>Inspects with every chunk size, asserts the results are identical, and returns one.</summary>
    public static async Task<UploadInspection> InspectWithEveryChunkSizeAsync(byte[] data, UploadInspectionOptions? options = null, int smallestChunk = 1)
    {
        UploadInspection? first = null;
        string? expected = null;
        foreach (int chunk in ChunkSizes.Where(c => c >= smallestChunk))
        {
            UploadInspection inspection = await InspectAsync(data, chunk, options);
            string described = Describe(inspection);
            if (expected is null)
            {
                expected = described;
                first = inspection;
            }
            else
            {
                Assert.Equal(expected, described);
            }
        }

        return first!;
    }

    /// <summary>Everything an inspection reports, as text, to compare runs.</summary>
    public static string Describe(UploadInspection inspection)
    {
        var text = new StringBuilder();
        text.AppendLine($"{inspection.Verdict} {inspection.Reason} {inspection.Format} {inspection.FormatSource} probed={inspection.ProbedFormat} content={inspection.Detection.Format} polyglot={inspection.Detection.IsPolyglot} length={inspection.Length} virtual={inspection.VirtualSize} sha={inspection.Sha256}");
        ChainLayer? layer = inspection.Layer;
        if (layer is not null)
        {
            text.AppendLine($"cluster={layer.ClusterSize} dirty={layer.DirtyFlag} encrypted={layer.Encrypted}");
        }

        foreach (ImageReference reference in inspection.References)
        {
            text.AppendLine($"ref {reference.Role} {reference.Kind} '{reference.StoredName}' fmt={reference.RecordedFormat} full={reference.FullName}");
        }

        foreach (ChainFinding finding in inspection.Findings)
        {
            text.AppendLine($"finding {finding.Code} {finding.LayerIndex} {finding.Message}");
        }

        return text.ToString();
    }
}
