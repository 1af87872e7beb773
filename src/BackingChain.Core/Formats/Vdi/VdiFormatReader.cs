using System;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using static BackingChain.Formats.Vdi.VdiLayout;

namespace BackingChain.Formats.Vdi;

/// <summary>Reads a VDI layer (dynamic or static) as qemu 7.2's <c>vdi</c> driver opens it.</summary>
internal sealed class VdiFormatReader : IImageFormatReader
{
    public static VdiFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Vdi;

    public string QemuName => "vdi";

    public string? LibvirtName => "vdi";

    public bool QemuOpensBacking => false;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = [SignatureRule.QemuProbe("vdi")];

    /// <summary>vdi_probe: a full 512-byte header with the signature at 0x40 (the text before it is not checked).</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) =>
        head.Length >= HeaderLength && BinaryPrimitives.ReadUInt32LittleEndian(head[SignatureOffset..]) == Signature ? 100 : 0;

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        byte[] data = (await HeaderReads.ReadPaddedAsync(context, 0, HeaderLength, cancellationToken).ConfigureAwait(false))!;
        HeaderError error = VdiHeader.Read(data, out VdiHeader header, out string? message);
        if (error != HeaderError.None)
        {
            return LayerFacts.Failed(error, message!);
        }

        // qemu refuses differencing images; VirtualBox names the parent by UUID only, so there is no name to follow.
        if (header.HasParent)
        {
            return LayerFacts.Failed(HeaderError.UnsupportedFeature, $"unsupported VDI image (non-NULL parent UUID {header.ParentUuid})");
        }

        return new LayerFacts(context)
        {
            VirtualSize = header.VirtualSize,
            ClusterSize = (int)header.BlockSize,
            DirtyFlag = false,
        };
    }
}
