using System;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Formats.Qcow;

/// <summary>Reads a qcow (version 1) layer. Its backing file has no recorded format: it is always probed.</summary>
internal sealed class QcowFormatReader : IImageFormatReader
{
    /// <summary>Names further away than this are read on their own rather than with the header.</summary>
    private const int ContiguousReadLimit = 64 * 1024;

    public static QcowFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Qcow;

    public string QemuName => "qcow";

    public string? LibvirtName => "qcow";

    public bool QemuOpensBacking => true;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = [SignatureRule.QemuProbe("qcow")];

    /// <summary>qcow_probe: a 48-byte buffer with the magic and version exactly 1.</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) =>
        head.Length >= QcowLayout.HeaderLength
        && BinaryPrimitives.ReadUInt32BigEndian(head) == QcowLayout.Magic
        && BinaryPrimitives.ReadUInt32BigEndian(head[QcowLayout.VersionOffset..]) == QcowLayout.Version1 ? 100 : 0;

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        ParsedHeader<QcowHeader> read = await HeaderReads.ReadUntilParsedAsync<QcowHeader>(context, ParseHeader, ContiguousReadLimit, cancellationToken).ConfigureAwait(false);
        ReadOnlyMemory<byte> data = read.Data;
        HeaderError error = read.Error;
        QcowHeader header = read.Header;
        string? backingName = null;
        if (read.NeedsFarRead)
        {
            // The name lies far from the header (qemu writes it right after): read just its bytes.
            ReadOnlyMemory<byte> name = await context.ReadAsync((long)header.BackingFileOffset, (int)header.BackingFileSize, cancellationToken).ConfigureAwait(false);
            backingName = CString.ToName(name.Span, "backing file name");
            error = HeaderError.None;
        }

        if (error != HeaderError.None)
        {
            return LayerFacts.Failed(error, QcowHeader.Describe(error, data.Span));
        }

        // qemu's bdrv_getlength refuses a length past INT64_MAX.
        if (header.VirtualSize > long.MaxValue)
        {
            return LayerFacts.Failed(HeaderError.InvalidSize, "Image too large");
        }

        backingName ??= header.GetBackingFileName(data.Span);
        var facts = new LayerFacts(context)
        {
            VirtualSize = (long)header.VirtualSize,
            ClusterSize = header.ClusterSize,
            DirtyFlag = false,
            Encrypted = header.IsEncrypted,
        };

        // No backing format can be stored: the backing file is probed (recorded format null).
        if (backingName is { Length: > 0 })
        {
            facts.References.Add(new StoredReference(backingName, ReferenceRole.BackingFile, null));
        }

        return facts;
    }

    /// <summary>qcow's checks do not depend on the file length.</summary>
    private static HeaderError ParseHeader(ReadOnlySpan<byte> data, long fileLength, bool dataReachesEndOfFile, out QcowHeader header, out long bytesNeeded) =>
        QcowHeader.Read(data, dataReachesEndOfFile, out header, out bytesNeeded);
}
