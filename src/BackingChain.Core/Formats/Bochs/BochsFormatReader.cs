using System;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using static BackingChain.Formats.Bochs.BochsLayout;

namespace BackingChain.Formats.Bochs;

/// <summary>Reads a Bochs layer as qemu 7.2 opens it. qemu reports neither a dirty flag nor a cluster size.</summary>
internal sealed class BochsFormatReader : IImageFormatReader
{
    public static BochsFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Bochs;

    public string QemuName => "bochs";

    public string? LibvirtName => "bochs";

    public bool QemuOpensBacking => false;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = [SignatureRule.QemuProbe("bochs")];

    /// <summary>bochs_probe: a 512-byte buffer with the three strings and a known version.</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) => BochsHeader.HasSignature(head) ? 100 : 0;

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        byte[] data = (await HeaderReads.ReadPaddedAsync(context, 0, HeaderLength, cancellationToken).ConfigureAwait(false))!;
        HeaderError error = BochsHeader.Read(data, out BochsHeader header, out string? message);
        return error != HeaderError.None
            ? LayerFacts.Failed(error, message!)
            : new LayerFacts(context) { VirtualSize = header.VirtualSize };
    }
}
