using System;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Formats;

/// <summary>
/// One format's plug into detection and the chain resolver. A new format is a folder with its header
/// parser and one of these, plus one line in <see cref="FormatReaders"/>.
/// </summary>
internal interface IImageFormatReader
{
    /// <summary>The format read.</summary>
    ImageFormat Format { get; }

    /// <summary>
    /// qemu 7.2's probe score for this driver on the first 512 bytes (zero-padded) and the file name:
    /// 0 for no, 100 for a magic match, 1 or 2 for the weak guesses (raw, cloop, dmg).
    /// </summary>
    int Probe(ReadOnlySpan<byte> head, string? fileName);

    /// <summary>Reads the image's header facts and references.</summary>
    ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken);
}
