using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using BackingChain.Formats.Qed;
using static BackingChain.Formats.Qed.QedLayout;

namespace BackingChain.Editing;

/// <summary>
/// Plans the header rewrite of a QED image that <c>qemu-img rebase -u</c> performs (qemu 7.2
/// <c>bdrv_qed_change_backing_file</c>): the backing name right after the 64-byte header, the
/// backing-file feature bit, and the no-probe bit when (and only when) the backing format is raw — the
/// only format QED can record. All fields are little-endian.
/// </summary>
/// <remarks>
/// <para>qemu writes the header and the name in one write. Here, when the 48 bytes of fields from offset 16 and
/// the new name at offset 64 all lie in the first 512-byte sector, that one write is made too: the whole change
/// within one sector. Otherwise the new name is first written to unused bytes past both the old and the new name
/// (the old header does not reach them), then one 48-byte write in the first sector switches the feature bits and
/// the pointer together (the commit), then the name is copied to its canonical place (offset 64, which the
/// pointer no longer reaches) and the pointer moved there (same meaning, within the first sector), and the
/// leftovers are zeroed. Whatever write fails, or wherever the process is killed, qemu reads the old (name,
/// format) or the new ones. When the header area has no room for the parked copy, the one write qemu makes is
/// made: a failure or a kill leaves the old state; only a power loss that tears that write across sectors can
/// mix them (docs/limits.md).</para>
/// </remarks>
internal static class QedBackingEdit
{
    /// <summary>The 64-byte header; the backing name goes right after it.</summary>
    public const int HeaderSize = QedLayout.HeaderLength;

    private const ulong FeatureBackingFile = (ulong)QedFeatures.BackingFile;
    private const ulong FeatureBackingFormatNoProbe = (ulong)QedFeatures.BackingFormatNoProbe;
    private const ulong KnownFeatures = (ulong)QedFeatures.Known;

    /// <summary>qemu reads the name into a PATH_MAX buffer with its terminating NUL.</summary>
    public const int MaxBackingNameLength = (int)BackingFilenameBufferSize - 1;

    private const int Alignment = 8;

    /// <summary>The unit a disk writes atomically: a write within one such sector survives a power loss whole or not at all.</summary>
    private const int SectorSize = 512;

    /// <summary>Plans the writes that set (or, with a <see langword="null"/> name, remove) the backing file.</summary>
    /// <param name="header">The first 64 bytes of the image.</param>
    /// <param name="name">The new backing name (UTF-8, already checked), or <see langword="null"/> to remove it.</param>
    /// <param name="formatIsRaw">Whether the backing format is raw (then qemu will not probe it).</param>
    /// <returns>The writes, in order.</returns>
    /// <exception cref="BackingEditException">The header is malformed, uses an unknown feature, or the name does not fit.</exception>
    public static List<HeaderWrite> Plan(ReadOnlySpan<byte> header, byte[]? name, bool formatIsRaw)
    {
        if (header.Length < HeaderSize || BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic)
        {
            throw Malformed("the QED header is truncated or has a wrong magic");
        }

        uint clusterSize = BinaryPrimitives.ReadUInt32LittleEndian(header[ClusterSizeOffset..]);
        uint tableSize = BinaryPrimitives.ReadUInt32LittleEndian(header[TableSizeOffset..]);
        uint headerClusters = BinaryPrimitives.ReadUInt32LittleEndian(header[HeaderSizeOffset..]);
        ulong features = BinaryPrimitives.ReadUInt64LittleEndian(header[FeaturesOffset..]);
        ulong compatFeatures = BinaryPrimitives.ReadUInt64LittleEndian(header[CompatFeaturesOffset..]);
        uint oldOffset = BinaryPrimitives.ReadUInt32LittleEndian(header[BackingFileNameOffsetOffset..]);
        uint oldSize = BinaryPrimitives.ReadUInt32LittleEndian(header[BackingFileNameSizeOffset..]);

        if (!IsPowerOfTwo(clusterSize) || clusterSize < MinClusterSize || clusterSize > MaxClusterSize
            || !IsPowerOfTwo(tableSize) || tableSize > MaxTableSize || headerClusters == 0)
        {
            throw Malformed("the QED header has an invalid cluster, table or header size");
        }

        ulong headerBytes = (ulong)clusterSize * headerClusters;
        if (headerBytes > uint.MaxValue)
        {
            throw Malformed("the QED header size overflows");
        }

        if ((features & ~KnownFeatures) != 0)
        {
            throw new BackingEditException(BackingEditError.UnsupportedFeature, "the image uses a QED feature that is not supported; it is left as it is");
        }

        // Like qemu: with an unknown compatible feature the layout after the header is unknown, so no name is added.
        if (name is not null && compatFeatures != 0)
        {
            throw new BackingEditException(BackingEditError.UnsupportedFeature, "the image uses a QED compatible feature that is not supported; no backing name is added");
        }

        bool hadBacking = (features & FeatureBackingFile) != 0;
        ulong oldEnd = HeaderSize;
        if (hadBacking)
        {
            if (oldOffset < HeaderSize || (ulong)oldOffset + oldSize > headerBytes)
            {
                throw Malformed("the QED backing file name lies outside the header area");
            }

            oldEnd = Math.Max(oldEnd, (ulong)oldOffset + oldSize);
        }

        ulong newFeatures = features & ~(FeatureBackingFile | FeatureBackingFormatNoProbe);
        if (name is not null)
        {
            newFeatures |= FeatureBackingFile;
            if (formatIsRaw)
            {
                newFeatures |= FeatureBackingFormatNoProbe;
            }

            if ((ulong)HeaderSize + (ulong)name.Length > headerBytes)
            {
                throw new BackingEditException(BackingEditError.DoesNotFit, $"the backing file name does not fit in the QED header area ({headerBytes} bytes)");
            }
        }

        var writes = new List<HeaderWrite>();
        int newSize = name?.Length ?? 0;
        ulong newEnd = (ulong)HeaderSize + (ulong)newSize;
        ulong zeroEnd = oldEnd;
        if (name is null)
        {
            // qemu keeps the offset at 64 with size 0.
            writes.Add(new HeaderWrite(FeaturesOffset, Fields(header, newFeatures, HeaderSize, 0)));
        }
        else
        {
            ulong parked = Align(Math.Max(oldEnd, newEnd));
            if (newEnd <= SectorSize)
            {
                // Fields and name lie in the first sector: one write there is the whole change, as qemu makes it.
                byte[] fields = Fields(header, newFeatures, HeaderSize, (uint)newSize);
                byte[] whole = new byte[fields.Length + newSize];
                fields.CopyTo(whole, 0);
                name.CopyTo(whole, fields.Length);
                writes.Add(new HeaderWrite(FeaturesOffset, whole));
            }
            else if (parked + (ulong)newSize <= Math.Min(headerBytes, uint.MaxValue))
            {
                writes.Add(new HeaderWrite((long)parked, name));
                writes.Add(new HeaderWrite(FeaturesOffset, Fields(header, newFeatures, (uint)parked, (uint)newSize)));
                writes.Add(new HeaderWrite(HeaderSize, name));
                writes.Add(new HeaderWrite(BackingFileNameOffsetOffset, Pointer(HeaderSize, (uint)newSize)));
                zeroEnd = Math.Max(zeroEnd, parked + (ulong)newSize);
            }
            else
            {
                byte[] fields = Fields(header, newFeatures, HeaderSize, (uint)newSize);
                byte[] whole = new byte[fields.Length + newSize];
                fields.CopyTo(whole, 0);
                name.CopyTo(whole, fields.Length);
                writes.Add(new HeaderWrite(FeaturesOffset, whole));
            }
        }

        if (zeroEnd > newEnd)
        {
            writes.Add(new HeaderWrite((long)newEnd, new byte[zeroEnd - newEnd]));
        }

        return writes;
    }

    /// <summary>Bytes 16 to 63 of the new header: features, compat features, autoclear (cleared: none is known, as qemu does on a read/write open), the rest, and the pointer.</summary>
    private static byte[] Fields(ReadOnlySpan<byte> header, ulong features, uint offset, uint size)
    {
        byte[] block = header[FeaturesOffset..HeaderSize].ToArray();
        BinaryPrimitives.WriteUInt64LittleEndian(block, features);
        BinaryPrimitives.WriteUInt64LittleEndian(block.AsSpan(AutoclearFeaturesOffset - FeaturesOffset), 0);
        Pointer(offset, size).CopyTo(block, BackingFileNameOffsetOffset - FeaturesOffset);
        return block;
    }

    private static byte[] Pointer(uint offset, uint size)
    {
        byte[] bytes = new byte[2 * sizeof(uint)];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, offset);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(sizeof(uint)), size);
        return bytes;
    }

    private static bool IsPowerOfTwo(uint value) => value != 0 && (value & (value - 1)) == 0;

    private static ulong Align(ulong offset) => (offset + Alignment - 1) & ~(ulong)(Alignment - 1);

    private static BackingEditException Malformed(string message) => new(BackingEditError.MalformedHeader, message + "; it is left as it is");
}
