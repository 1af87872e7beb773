using System;
using System.Buffers.Binary;
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

    /// <summary>block_crypto_probe_luks: the magic and version 1 only (LUKS2 probes as raw).</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) =>
        head.Length >= MagicLength + sizeof(ushort) && head.StartsWith(Magic)
        && BinaryPrimitives.ReadUInt16BigEndian(head[VersionOffset..]) == 1 ? 100 : 0;

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        byte[] data = (await PaddedReads.ReadAsync(context, 0, HeaderLength, cancellationToken).ConfigureAwait(false))!;
        if (!data.AsSpan().StartsWith(Magic))
        {
            return LayerFacts.Failed(HeaderError.BadMagic, "Volume is not in LUKS format");
        }

        ushort version = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(VersionOffset));
        if (version != 1)
        {
            return LayerFacts.Failed(HeaderError.UnsupportedVersion, $"LUKS version {version} is not supported");
        }

        Luks1Header header = Luks1Header.Parse(data);
        string? problem = Check(data, header);
        if (problem is not null)
        {
            return LayerFacts.Failed(HeaderError.Inconsistent, problem);
        }

        // block_crypto_co_getlength: the file's length (whole sectors) minus the payload offset.
        long fileLength = PaddedReads.RoundedLength(context.Source.Length);
        if (header.PayloadOffset > fileLength)
        {
            return LayerFacts.Failed(HeaderError.Truncated, "Input/output error");
        }

        return new LayerFacts
        {
            VirtualSize = fileLength - header.PayloadOffset,
            DirtyFlag = false,
            Encrypted = true,
            FormatSpecific = LuksFormatInfo.FromHeader(data, header),
        };
    }

    /// <summary>
    /// qcrypto_block_luks_check_header and the mode parse, with qemu's messages. Unlike qemu, slot ranges are
    /// computed in 64 bits, so a key offset near 2^32 is refused rather than wrapped.
    /// </summary>
    internal static string? Check(ReadOnlySpan<byte> data, in Luks1Header header)
    {
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

        ReadOnlySpan<byte> mode = data.Slice(CipherModeOffset, NameFieldLength);
        if (CString.Of(mode).IndexOf((byte)'-') < 0)
        {
            return $"Unexpected cipher mode string format '{Luks1Header.GetCipherMode(data)}'";
        }

        return null;
    }

    /// <summary>Key material sectors of a slot: master key × stripes, in sectors, rounded up to the 8-sector header size (as cryptsetup does).</summary>
    private static ulong SplitKeySectors(uint keyBytes)
    {
        ulong sectors = (((ulong)keyBytes * Stripes) + SectorSize - 1) / SectorSize;
        return (sectors + KeySlotAreaStartSectors - 1) / KeySlotAreaStartSectors * KeySlotAreaStartSectors;
    }
}
