using System;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using static BackingChain.Formats.Dmg.DmgLayout;

namespace BackingChain.Formats.Dmg;

/// <summary>
/// Reads a DMG layer as qemu 7.2 opens it: the "koly" trailer near the end, then the chunk tables ("mish"
/// blocks) from the resource fork or the XML property list, with qemu's limits. qemu reports neither a dirty
/// flag nor a cluster size.
/// </summary>
internal sealed class DmgFormatReader : IImageFormatReader
{
    private const string InvalidArgument = "Invalid argument";

    private static readonly string TooManyResources = $"the dmg resource list holds more than {MaxResources} resources";

    public static DmgFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Dmg;

    public string QemuName => "dmg";

    public string? LibvirtName => "dmg";

    public bool QemuOpensBacking => false;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = CreateSignatures();

    /// <summary>
    /// dmg_probe looks only at the file name: longer than 4 characters and ending in ".dmg" (case-sensitive)
    /// scores 2, whatever the content. Never a safe signal: a raw image named *.dmg probes as dmg.
    /// </summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) =>
        fileName is { Length: > 4 } && fileName.EndsWith(".dmg", StringComparison.Ordinal) ? 2 : 0;

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        long length = HeaderReads.RoundedLength(context.Source.Length);
        if (length < MinimumFileLength)
        {
            return LayerFacts.Failed(HeaderError.Truncated, "dmg file must be at least 512 bytes long");
        }

        (long windowOffset, int windowLength) = DmgTrailer.GetSearchWindow(context.Source.Length);
        byte[] window = (await HeaderReads.ReadPaddedAsync(context, (ulong)windowOffset, windowLength, cancellationToken).ConfigureAwait(false))!;
        long trailerOffset = DmgTrailer.FindTrailer(window, windowOffset);
        if (trailerOffset < 0)
        {
            return LayerFacts.Failed(HeaderError.BadMagic, "Could not locate UDIF trailer in dmg file");
        }

        byte[] trailerBytes = (await HeaderReads.ReadPaddedAsync(context, (ulong)trailerOffset, TrailerSize, cancellationToken).ConfigureAwait(false))!;
        HeaderError error = DmgTrailer.Read(trailerBytes, out DmgTrailer trailer);
        if (error == HeaderError.None)
        {
            error = trailer.Validate(trailerOffset);
        }

        if (error != HeaderError.None)
        {
            return LayerFacts.Failed(error, InvalidArgument);
        }

        string? problem = trailer.ResourceForkLength != 0
            ? await ReadResourceForkAsync(context, trailer.ResourceForkOffset, trailer.ResourceForkLength, cancellationToken).ConfigureAwait(false)
            : trailer.XmlLength != 0
                ? await ReadPropertyListAsync(context, trailer.XmlOffset, trailer.XmlLength, cancellationToken).ConfigureAwait(false)
                : InvalidArgument;
        return problem is not null
            ? LayerFacts.Failed(HeaderError.InvalidExtension, problem)
            : new LayerFacts(context) { VirtualSize = (long)trailer.SectorCount * 512 };
    }

    /// <summary>dmg_read_resource_fork: a resource data area of length-prefixed resources, each maybe a "mish" block.</summary>
    private static async ValueTask<string?> ReadResourceForkAsync(LayerReadContext context, ulong begin, ulong length, CancellationToken cancellationToken)
    {
        byte[]? prefix = await HeaderReads.ReadPaddedAsync(context, begin, 3 * sizeof(uint), cancellationToken).ConfigureAwait(false);
        if (prefix is null)
        {
            return InvalidArgument;
        }

        uint dataOffset = BinaryPrimitives.ReadUInt32BigEndian(prefix);
        uint count = BinaryPrimitives.ReadUInt32BigEndian(prefix.AsSpan(2 * sizeof(uint)));

        // qemu adds the two u32 values in 32 bits; the sum can wrap.
        if (dataOffset > length || count == 0 || unchecked(dataOffset + count) > length)
        {
            return InvalidArgument;
        }

        ulong offset = begin + dataOffset;
        ulong end = offset + count;
        int resources = 0;
        while (offset < end)
        {
            if (++resources > MaxResources)
            {
                return TooManyResources;
            }

            byte[]? sizeBytes = await HeaderReads.ReadPaddedAsync(context, offset, sizeof(uint), cancellationToken).ConfigureAwait(false);
            if (sizeBytes is null)
            {
                return InvalidArgument;
            }

            uint size = BinaryPrimitives.ReadUInt32BigEndian(sizeBytes);
            if (size == 0 || size > end - offset)
            {
                return InvalidArgument;
            }

            offset += sizeof(uint);
            byte[]? resource = await HeaderReads.ReadPaddedAsync(context, offset, (int)size, cancellationToken).ConfigureAwait(false);
            if (resource is null)
            {
                return "Resource too large";
            }

            string? problem = CheckMish(resource);
            if (problem is not null)
            {
                return problem;
            }

            offset += size;
        }

        return null;
    }

    /// <summary>dmg_read_plist_xml: every &lt;data&gt;…&lt;/data&gt; element is a base64 "mish" block. At most 16 MiB.</summary>
    private static async ValueTask<string?> ReadPropertyListAsync(LayerReadContext context, ulong begin, ulong length, CancellationToken cancellationToken)
    {
        if (length == 0 || length > MaxXmlLength)
        {
            return InvalidArgument;
        }

        byte[]? xml = await HeaderReads.ReadPaddedAsync(context, begin, (int)length, cancellationToken).ConfigureAwait(false);
        if (xml is null)
        {
            return InvalidArgument;
        }

        // qemu treats the buffer as a C string.
        ReadOnlySpan<byte> text = CString.Of(xml);

        int resources = 0;
        while (true)
        {
            int open = text.IndexOf("<data>"u8);
            if (open < 0)
            {
                return null;
            }

            if (++resources > MaxResources)
            {
                return TooManyResources;
            }

            text = text[(open + "<data>".Length)..];
            int close = text.IndexOf("</data>"u8);
            if (close < 0)
            {
                return InvalidArgument;
            }

            string? problem = CheckMish(DecodeBase64Lenient(text[..close]));
            if (problem is not null)
            {
                return problem;
            }

            text = text[(close + 1)..];
        }
    }

    /// <summary>dmg_read_mish_block's limits: chunks of known types may not exceed 64 MiB (zero and ignored chunks have no sector limit).</summary>
    internal static string? CheckMish(ReadOnlySpan<byte> block)
    {
        if (block.Length < MishMinimumSize || BinaryPrimitives.ReadUInt32BigEndian(block) != MishSignature)
        {
            return null; // not a mish block: qemu skips it
        }

        int chunks = (block.Length - MishChunksOffset) / ChunkSize;
        for (int i = 0; i < chunks; i++)
        {
            ReadOnlySpan<byte> chunk = block.Slice(MishChunksOffset + (i * ChunkSize), ChunkSize);
            uint type = BinaryPrimitives.ReadUInt32BigEndian(chunk);

            // This Debian build ships no bzip2/lzfse modules, so those chunk types are unknown and skipped, as comments and the terminator are.
            if (type is not (ChunkZero or ChunkRaw or ChunkIgnore or ChunkZlib))
            {
                continue;
            }

            ulong sectors = BinaryPrimitives.ReadUInt64BigEndian(chunk[ChunkSectorCountOffset..]);
            if (type is not (ChunkZero or ChunkIgnore) && sectors > MaxChunkSectors)
            {
                return $"sector count {sectors} for chunk {i} is larger than max ({MaxChunkSectors})";
            }

            ulong length = BinaryPrimitives.ReadUInt64BigEndian(chunk[ChunkLengthOffset..]);
            if (length > MaxChunkLength)
            {
                return $"length {length} for chunk {i} is larger than max ({MaxChunkLength})";
            }
        }

        return null;
    }

    /// <summary>Base64 as glib decodes it for qemu: characters outside the alphabet (whitespace, '=') are skipped.</summary>
    private static byte[] DecodeBase64Lenient(ReadOnlySpan<byte> text)
    {
        byte[] output = new byte[(text.Length * 3 / 4) + 3];
        int written = 0, bits = 0;
        uint accumulator = 0;
        foreach (byte c in text)
        {
            int value = c switch
            {
                >= (byte)'A' and <= (byte)'Z' => c - 'A',
                >= (byte)'a' and <= (byte)'z' => c - 'a' + 26,
                >= (byte)'0' and <= (byte)'9' => c - '0' + 52,
                (byte)'+' => 62,
                (byte)'/' => 63,
                _ => -1,
            };
            if (value < 0)
            {
                continue;
            }

            accumulator = (accumulator << 6) | (uint)value;
            bits += 6;
            if (bits >= 8)
            {
                bits -= 8;
                output[written++] = (byte)(accumulator >> bits);
            }
        }

        return output.AsSpan(0, written).ToArray();
    }

    /// <summary>
    /// A UDIF trailer by content (which qemu's probe never looks at), and qemu's own signal, the file name, noted only
    /// when it decided qemu's choice.
    /// </summary>
    private static ImmutableArray<SignatureRule> CreateSignatures() =>
    [
        SignatureRule.Unseen(SignatureLocation.Tail, "UDIF (DMG) trailer near the end of the file", static (in SignatureInput input) => FindTrailerInTail(input.Tail, input.ImageLength)),
        SignatureRule.Seen(
            SignatureLocation.FileName,
            "file name ends in .dmg (qemu's dmg probe ignores the content)",
            static (in SignatureInput input) => input.QemuFormat == ImageFormat.Dmg),
    ];

    /// <summary>qemu's "koly" search, over the tail (zero-padded past the end), then a trailer consistent with its position.</summary>
    private static bool FindTrailerInTail(ReadOnlySpan<byte> tail, long imageLength)
    {
        if (imageLength < MinimumFileLength)
        {
            return false;
        }

        long tailStart = imageLength - tail.Length;
        (long windowOffset, int windowLength) = DmgTrailer.GetSearchWindow(imageLength);
        Span<byte> window = stackalloc byte[SearchWindow + TrailerSize];
        window.Clear();
        for (int i = 0; i < window.Length; i++)
        {
            long at = windowOffset + i - tailStart;
            if (at >= 0 && at < tail.Length)
            {
                window[i] = tail[(int)at];
            }
            else if (windowOffset + i < tailStart)
            {
                return false; // the tail does not cover qemu's window
            }
        }

        long trailer = DmgTrailer.FindTrailer(window[..windowLength], windowOffset);
        if (trailer < 0)
        {
            return false;
        }

        int start = (int)(trailer - windowOffset);
        return DmgTrailer.TryParse(window.Slice(start, TrailerSize), out DmgTrailer parsed, out _)
            && parsed.Validate(trailer) == HeaderError.None
            && BinaryPrimitives.ReadUInt32BigEndian(window.Slice(start + HeaderSizeOffset)) == TrailerSize;
    }
}
