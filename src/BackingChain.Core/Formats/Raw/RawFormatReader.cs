using System;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Formats.Raw;

/// <summary>Raw: no header, qemu's fallback with the smallest positive probe score.</summary>
internal sealed class RawFormatReader : IImageFormatReader
{
    public static RawFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Raw;

    public string QemuName => "raw";

    public string? LibvirtName => "raw";

    public bool QemuOpensBacking => false;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => true;

    public ImmutableArray<SignatureRule> Signatures { get; } = CreateSignatures();

    public int Probe(ReadOnlySpan<byte> head, string? fileName) => 1;

    /// <summary>Virtual size is the length rounded up to 512 (qemu's refresh_total_sectors).</summary>
    public ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        long length = context.Source.Length;
        long virtualSize = length > long.MaxValue - 511 ? length : (length + 511) & ~511L;
        return new ValueTask<LayerFacts>(new LayerFacts(context) { VirtualSize = virtualSize, DirtyFlag = false });
    }

    /// <summary>Where an ISO 9660 image keeps its first volume descriptor: after a 32 KiB system area that the standard leaves free.</summary>
    internal const int Iso9660DescriptorOffset = 16 * 2048;

    /// <summary>
    /// Raw has no magic, but an ISO 9660 disc is raw with a meaning other tools (and OpenStack's inspector) see:
    /// inside another format's header it makes the file a polyglot.
    /// </summary>
    private static ImmutableArray<SignatureRule> CreateSignatures() =>
    [
        SignatureRule.Unseen(SignatureLocation.Head, "ISO 9660 volume descriptor at byte 32768", static (in SignatureInput input) => IsIso9660(input.Head)),
    ];

    /// <summary>A primary, supplementary or terminating ISO 9660 volume descriptor: a type byte, <c>CD001</c>, version 1.</summary>
    private static bool IsIso9660(ReadOnlySpan<byte> head)
    {
        if (head.Length < Iso9660DescriptorOffset + 7)
        {
            return false;
        }

        ReadOnlySpan<byte> descriptor = head.Slice(Iso9660DescriptorOffset, 7);
        return descriptor[1..6].SequenceEqual("CD001"u8) && descriptor[6] == 1 && descriptor[0] is 0 or 1 or 2 or 3 or 255;
    }
}
