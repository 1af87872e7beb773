using System;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using static BackingChain.Formats.Cloop.CloopLayout;

namespace BackingChain.Formats.Cloop;

/// <summary>Reads a cloop layer as qemu 7.2 opens it. qemu reports neither a dirty flag nor a cluster size.</summary>
internal sealed class CloopFormatReader : IImageFormatReader
{
    public static CloopFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Cloop;

    public string QemuName => "cloop";

    public string? LibvirtName => "cloop";

    public bool QemuOpensBacking => false;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = [SignatureRule.QemuProbe("cloop")];

    /// <summary>cloop_probe: the buffer starts with the V2.0 preamble; a weak score of 2.</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName)
    {
        int length = Math.Min(Preamble.Length, head.Length);
        return head[..length].SequenceEqual(Preamble[..length]) ? 2 : 0;
    }

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        byte[] data = (await HeaderReads.ReadPaddedAsync(context, 0, HeaderLength, cancellationToken).ConfigureAwait(false))!;
        HeaderError error = CloopHeader.Read(data, out CloopHeader header, out string? message);
        if (error != HeaderError.None)
        {
            return LayerFacts.Failed(error, message!);
        }

        string? problem = await CheckOffsetsAsync(context, header, cancellationToken).ConfigureAwait(false);
        return problem is not null
            ? LayerFacts.Failed(HeaderError.InvalidOffset, problem)
            : new LayerFacts(context) { VirtualSize = header.VirtualSize };
    }

    /// <summary>
    /// qemu: offsets must not decrease and no compressed block may exceed 2 × 64 MiB. Only the part of the table
    /// inside the file is read (bounded by the file); past the end qemu reads zeros, so the first such entry is 0.
    /// </summary>
    private static async ValueTask<string?> CheckOffsetsAsync(LayerReadContext context, CloopHeader header, CancellationToken cancellationToken)
    {
        const int ChunkEntries = 65536;
        ulong entries = (ulong)header.BlockCount + 1;
        long available = Math.Max(0, context.Source.Length - OffsetsOffset);
        ulong inFile = Math.Min(entries, ((ulong)available + sizeof(ulong) - 1) / sizeof(ulong));
        ulong previous = 0;
        for (ulong first = 0; first < inFile; first += ChunkEntries)
        {
            int count = (int)Math.Min(ChunkEntries, inFile - first);
            byte[]? bytes = await HeaderReads.ReadPaddedAsync(context, OffsetsOffset + (first * sizeof(ulong)), count * sizeof(ulong), cancellationToken).ConfigureAwait(false);
            if (bytes is null)
            {
                return "Could not read cloop offsets";
            }

            for (int i = 0; i < count; i++)
            {
                ulong index = first + (ulong)i;
                ulong offset = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * sizeof(ulong)));
                if (index > 0)
                {
                    if (offset < previous)
                    {
                        return $"offsets not monotonically increasing at index {index}, image file is corrupt";
                    }

                    if (offset - previous > 2UL * MaxBlockSize)
                    {
                        return $"invalid compressed block size at index {index}, image file is corrupt";
                    }
                }

                previous = offset;
            }
        }

        // The rest reads as zeros: only the first of them can break the order.
        if (inFile < entries && inFile > 0 && previous > 0)
        {
            return $"offsets not monotonically increasing at index {inFile}, image file is corrupt";
        }

        return null;
    }
}
