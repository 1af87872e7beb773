using System;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using static BackingChain.Formats.Luks.LuksLayout;

namespace BackingChain.Formats.Luks;

/// <summary>
/// Reads a <c>luks</c> layer as qemu 7.2 opens it for <c>qemu-img info</c> (no key needed): the LUKS1 header,
/// qemu's consistency checks, and the payload offset that gives the virtual size. LUKS2 is refused, as by qemu.
/// </summary>
internal sealed class LuksFormatReader : IImageFormatReader
{
    /// <summary>The key material area starts after the 4 KiB header (qemu's QCRYPTO_BLOCK_LUKS_KEY_SLOT_OFFSET).</summary>
    private const uint KeySlotAreaStartSectors = 4096 / SectorSize;

    /// <summary>Anti-forensic stripes qemu requires of every slot.</summary>
    private const uint Stripes = 4000;

    public static LuksFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Luks;

    public string QemuName => "luks";

    public string? LibvirtName => "luks";

    public bool QemuOpensBacking => false;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => true;

    public ImmutableArray<SignatureRule> Signatures { get; } = CreateSignatures();

    /// <summary>block_crypto_probe_luks: the magic and version 1 only (LUKS2 probes as raw).</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) =>
        head.Length >= MagicLength + sizeof(ushort) && head.StartsWith(Magic)
        && BinaryPrimitives.ReadUInt16BigEndian(head[VersionOffset..]) == 1 ? 100 : 0;

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        byte[] data = (await HeaderReads.ReadPaddedAsync(context, 0, HeaderLength, cancellationToken).ConfigureAwait(false))!;
        string? problem = Validate(data, out Luks1Header header, out HeaderError error);
        if (problem is not null)
        {
            return LayerFacts.Failed(error, problem);
        }

        // block_crypto_co_getlength: the file's length (whole sectors) minus the payload offset.
        long fileLength = HeaderReads.RoundedLength(context.Source.Length);
        if (header.PayloadOffset > fileLength)
        {
            return LayerFacts.Failed(HeaderError.Truncated, "Input/output error");
        }

        return new LayerFacts(context)
        {
            VirtualSize = fileLength - header.PayloadOffset,
            DirtyFlag = false,
            Encrypted = true,
            FormatSpecific = LuksFormatInfo.FromHeader(data, header),
        };
    }

    /// <summary>
    /// Everything qemu 7.2 checks when it opens a LUKS1 header without a key (a luks image, or the encryption header
    /// of a qcow2 image): magic, version, terminated text fields, layout, algorithms. Returns qemu's message for the
    /// first problem, or <see langword="null"/> with the parsed header.
    /// </summary>
    internal static string? Validate(ReadOnlySpan<byte> data, out Luks1Header header, out HeaderError error)
    {
        header = default;
        if (data.Length < HeaderLength || !data.StartsWith(Magic))
        {
            error = HeaderError.BadMagic;
            return "Volume is not in LUKS format";
        }

        ushort version = BinaryPrimitives.ReadUInt16BigEndian(data[VersionOffset..]);
        if (version != 1)
        {
            error = HeaderError.UnsupportedVersion;
            return $"LUKS version {version} is not supported";
        }

        string? unterminated = Luks1Header.UnterminatedField(data);
        if (unterminated is not null)
        {
            error = HeaderError.InvalidText;
            return $"LUKS header {unterminated} is not NUL terminated";
        }

        header = Luks1Header.Parse(data);
        return Check(data, header, out error);
    }

    /// <summary>
    /// qcrypto_block_luks_check_header and parse_header after the text fields were found terminated, in qemu's
    /// order and with qemu's messages: the layout, then the algorithm names (an unknown one is
    /// <see cref="HeaderError.UnsupportedFeature"/>, a broken layout <see cref="HeaderError.Inconsistent"/>).
    /// Unlike qemu, slot ranges are computed in 64 bits, so a key offset near 2^32 is refused rather than wrapped.
    /// </summary>
    private static string? Check(ReadOnlySpan<byte> data, in Luks1Header header, out HeaderError error)
    {
        error = HeaderError.Inconsistent;
        if (header.PayloadOffsetSectors < KeySlotAreaStartSectors)
        {
            return "LUKS payload is overlapping with the header";
        }

        if (header.MasterKeyDigestIterations == 0)
        {
            return "LUKS key iteration count is zero";
        }

        for (int i = 0; i < KeySlotCount; i++)
        {
            ReadOnlySpan<byte> slot = data.Slice(KeySlotsOffset + (i * KeySlotSize), KeySlotSize);
            uint active = BinaryPrimitives.ReadUInt32BigEndian(slot[KeySlotActiveOffset..]);
            uint iterations = BinaryPrimitives.ReadUInt32BigEndian(slot[KeySlotIterationsOffset..]);
            ulong start = BinaryPrimitives.ReadUInt32BigEndian(slot[KeySlotKeyMaterialOffsetOffset..]);
            uint stripes = BinaryPrimitives.ReadUInt32BigEndian(slot[KeySlotStripesOffset..]);
            if (stripes != Stripes)
            {
                return $"Keyslot {i} is corrupted (stripes {(int)stripes} != {Stripes})";
            }

            if (active != KeySlotDisabled && active != KeySlotEnabled)
            {
                return $"Keyslot {i} state (active/disable) is corrupted";
            }

            if (active == KeySlotEnabled && iterations == 0)
            {
                return $"Keyslot {i} iteration count is zero";
            }

            if (start < KeySlotAreaStartSectors)
            {
                return $"Keyslot {i} is overlapping with the LUKS header";
            }

            ulong length = SplitKeySectors(header.KeyBytes);
            if (start + length > header.PayloadOffsetSectors)
            {
                return $"Keyslot {i} is overlapping with the encrypted payload";
            }

            for (int j = i + 1; j < KeySlotCount; j++)
            {
                ulong other = BinaryPrimitives.ReadUInt32BigEndian(data[(KeySlotsOffset + (j * KeySlotSize) + KeySlotKeyMaterialOffsetOffset)..]);
                if (start + length > other && other + length > start)
                {
                    return $"Keyslots {i} and {j} are overlapping in the header";
                }
            }
        }

        string? algorithms = LuksAlgorithms.Check(
            Luks1Header.GetCipherName(data), Luks1Header.GetCipherMode(data), Luks1Header.GetHashSpec(data), header.KeyBytes, out bool unsupported);
        if (algorithms is not null && unsupported)
        {
            error = HeaderError.UnsupportedFeature;
        }

        return algorithms;
    }

    /// <summary>Key material sectors of a slot: master key × stripes, in sectors, rounded up to the 8-sector header size (as cryptsetup does).</summary>
    private static ulong SplitKeySectors(uint keyBytes)
    {
        ulong sectors = (((ulong)keyBytes * Stripes) + SectorSize - 1) / SectorSize;
        return (sectors + KeySlotAreaStartSectors - 1) / KeySlotAreaStartSectors * KeySlotAreaStartSectors;
    }

    /// <summary>qemu 7.2's probe sees LUKS version 1 only; a primary LUKS2 header is content qemu reads as raw.</summary>
    private static ImmutableArray<SignatureRule> CreateSignatures() =>
    [
        SignatureRule.QemuProbe("luks"),
        SignatureRule.Unseen(
            SignatureLocation.Head,
            "LUKS2 header (qemu 7.2 probes it as raw and cannot open it)",
            static (in SignatureInput input) => Luks2Header.TryParse(input.Head, out Luks2Header header, out _) && !header.IsSecondary),
    ];
}
