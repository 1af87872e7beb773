using System;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Formats.Raw;

/// <summary>Raw: no header, qemu's fallback with the smallest positive probe score.</summary>
internal sealed class RawFormatReader : IImageFormatReader
{
    public static RawFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Raw;

    public int Probe(ReadOnlySpan<byte> head, string? fileName) => 1;

    /// <summary>Virtual size is the length rounded up to 512 (qemu's refresh_total_sectors).</summary>
    public ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        long length = context.Source.Length;
        long virtualSize = length > long.MaxValue - 511 ? length : (length + 511) & ~511L;
        return new ValueTask<LayerFacts>(new LayerFacts { VirtualSize = virtualSize, DirtyFlag = false });
    }
}
