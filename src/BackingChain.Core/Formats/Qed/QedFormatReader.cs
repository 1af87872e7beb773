using System;
using System.Buffers.Binary;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;

namespace BackingChain.Formats.Qed;

/// <summary>Reads a QED layer. Its backing file is recorded as raw (feature bit 2) or probed.</summary>
internal sealed class QedFormatReader : IImageFormatReader
{
    /// <summary>Names further away than this are read on their own rather than with the header.</summary>
    private const int ContiguousReadLimit = 64 * 1024;

    public static QedFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Qed;

    /// <summary>bdrv_qed_probe: a 64-byte buffer starting with the little-endian magic.</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) =>
        head.Length >= QedLayout.HeaderLength
        && BinaryPrimitives.ReadUInt32LittleEndian(head) == QedLayout.Magic ? 100 : 0;

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        long fileLength = context.Source.Length;
        ReadOnlyMemory<byte> data = context.Head;
        HeaderError error = QedHeader.Read(data.Span, fileLength, context.HeadIsWholeImage, out QedHeader header, out long required);
        string? backingName = null;
        if (error == HeaderError.Truncated && required > data.Length)
        {
            if (required <= ContiguousReadLimit)
            {
                data = await context.ReadAsync(0, (int)required, cancellationToken).ConfigureAwait(false);
                error = QedHeader.Read(data.Span, fileLength, data.Length >= fileLength, out header, out _);
            }
            else
            {
                // The name lies far into the header clusters (qemu writes it right after the 64-byte header):
                // read just its bytes (fewer than 4096, checked) rather than everything before it.
                ReadOnlyMemory<byte> name = await context.ReadAsync(header.BackingFileNameOffset, (int)header.BackingFileNameSize, cancellationToken).ConfigureAwait(false);
                backingName = CString.ToName(name.Span, "backing file name");
                error = HeaderError.None;
            }
        }

        if (error != HeaderError.None)
        {
            return LayerFacts.Failed(error, QedHeader.Describe(error, header));
        }

        if (header.ImageSize > long.MaxValue)
        {
            return LayerFacts.Failed(HeaderError.InvalidSize, "QED image size is invalid");
        }

        var facts = new LayerFacts
        {
            VirtualSize = (long)header.ImageSize,
            ClusterSize = (int)header.ClusterSize,

            // qemu 7.2's bdrv_qed_co_get_info does not report the need-check bit: qemu-img info shows
            // "dirty-flag": false even when it is set (measured). NeedsCheck keeps the bit for callers.
            DirtyFlag = false,
        };

        backingName ??= header.GetBackingFileName(data.Span);
        if (backingName is { Length: > 0 })
        {
            facts.References.Add(new StoredReference(backingName, ReferenceRole.BackingFile, header.BackingFormat));
        }

        return facts;
    }
}
