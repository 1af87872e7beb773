using System;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Formats.Qed;

/// <summary>Reads a QED layer. Its backing file is recorded as raw (feature bit 2) or probed.</summary>
internal sealed class QedFormatReader : IImageFormatReader
{
    /// <summary>Names further away than this are read on their own rather than with the header.</summary>
    private const int ContiguousReadLimit = 64 * 1024;

    public static QedFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Qed;

    public string QemuName => "qed";

    public string? LibvirtName => "qed";

    public bool QemuOpensBacking => true;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => backingFormat == ImageFormat.Raw;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = [SignatureRule.QemuProbe("qed")];

    /// <summary>bdrv_qed_probe: a 64-byte buffer starting with the little-endian magic.</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) =>
        head.Length >= QedLayout.HeaderLength
        && BinaryPrimitives.ReadUInt32LittleEndian(head) == QedLayout.Magic ? 100 : 0;

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        ParsedHeader<QedHeader> read = await HeaderReads.ReadUntilParsedAsync<QedHeader>(context, QedHeader.Read, ContiguousReadLimit, cancellationToken).ConfigureAwait(false);
        ReadOnlyMemory<byte> data = read.Data;
        HeaderError error = read.Error;
        QedHeader header = read.Header;
        string? backingName = null;
        if (error == HeaderError.Truncated && read.BytesNeeded > ContiguousReadLimit)
        {
            // The name lies far into the header clusters (qemu writes it right after the 64-byte header):
            // read just its bytes (fewer than 4096, checked) rather than everything before it. Unlike qcow, QED
            // takes whatever of the name the file holds even when the file ends first, as it always has.
            ReadOnlyMemory<byte> name = await context.ReadAsync(header.BackingFileNameOffset, (int)header.BackingFileNameSize, cancellationToken).ConfigureAwait(false);
            backingName = CString.ToName(name.Span, "backing file name");
            error = HeaderError.None;
        }

        if (error != HeaderError.None)
        {
            return LayerFacts.Failed(error, QedHeader.Describe(error, header));
        }

        if (header.ImageSize > long.MaxValue)
        {
            return LayerFacts.Failed(HeaderError.InvalidSize, "QED image size is invalid");
        }

        var facts = new LayerFacts(context)
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
