using System;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using static BackingChain.Formats.Parallels.ParallelsLayout;

namespace BackingChain.Formats.Parallels;

/// <summary>Reads a Parallels layer as qemu 7.2 opens it read-only. qemu reports neither a dirty flag nor a cluster size.</summary>
internal sealed class ParallelsFormatReader : IImageFormatReader
{
    public static ParallelsFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Parallels;

    public string QemuName => "parallels";

    public string? LibvirtName => null;

    public bool QemuOpensBacking => false;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = [SignatureRule.QemuProbe("parallels")];

    /// <summary>parallels_probe: either magic and version 2.</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName)
    {
        if (head.Length < HeaderLength || BinaryPrimitives.ReadUInt32LittleEndian(head[VersionOffset..]) != SupportedVersion)
        {
            return 0;
        }

        ReadOnlySpan<byte> magic = head[..MagicLength];
        return magic.SequenceEqual(Magic) || magic.SequenceEqual(MagicExtended) ? 100 : 0;
    }

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        byte[] data = (await HeaderReads.ReadPaddedAsync(context, 0, HeaderLength, cancellationToken).ConfigureAwait(false))!;
        HeaderError error = ParallelsHeader.Read(data, out ParallelsHeader header);
        if (error != HeaderError.None)
        {
            return LayerFacts.Failed(error, ParallelsHeader.Describe(error, data));
        }

        // Read-only opens read the format extension cluster and refuse a wrong magic.
        if (header.ExtOff != 0)
        {
            byte[]? magic = header.ExtOff > ulong.MaxValue / SectorSize
                ? null
                : await HeaderReads.ReadPaddedAsync(context, header.ExtOff * SectorSize, sizeof(ulong), cancellationToken).ConfigureAwait(false);
            ulong found = magic is null ? 0 : BinaryPrimitives.ReadUInt64LittleEndian(magic);
            if (found != FormatExtensionMagic)
            {
                return LayerFacts.Failed(HeaderError.InvalidExtension, $"Wrong parallels Format Extension magic: 0x{found:x}, expected: 0x{FormatExtensionMagic:x}");
            }
        }

        return new LayerFacts(context) { VirtualSize = (long)header.TotalSectors * SectorSize };
    }
}
