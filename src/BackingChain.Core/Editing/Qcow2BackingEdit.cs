using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using BackingChain.Formats.Qcow2;
using static BackingChain.Formats.Qcow2.Qcow2Layout;

namespace BackingChain.Editing;

/// <summary>
/// Plans the rewrite of a qcow2 header that <c>qemu-img rebase -u</c> performs (qemu 7.2
/// <c>qcow2_change_backing_file</c> and <c>qcow2_update_header</c>): new backing format extension,
/// the other extensions kept, end marker, then the backing name. A pure function from cluster 0 to an
/// ordered list of writes, so the order can be tested without a disk.
/// </summary>
/// <remarks>
/// <para>Layout (as qemu writes it): header fields up to <c>header_length</c> untouched except the
/// backing pointer and the autoclear bits; then the backing format extension, the external data file
/// name, the encryption header pointer, the feature name table, the bitmaps extension, the unknown
/// extensions in their original order, the end marker, and the backing name right after it. Extension
/// payloads are copied byte for byte; only their order is qemu's. Unlike qemu, the feature name table
/// is kept as found rather than regenerated (and not added when absent).</para>
/// <para>Order of writes, each followed by a flush. The rule: after any prefix, qemu reads the old (name,
/// format), the new one, or a name with no recorded format (probed, which the trust rule refuses unless the
/// image is raw or trusted); never one name with the other's format.</para>
/// <list type="number">
/// <item>Unknown autoclear bits are cleared first, as the spec requires of any writer. Nothing else changes meaning.</item>
/// <item>When the recorded format changes, the extension area is rewritten without a backing format: (old name, none).</item>
/// <item>The new name is written to unused bytes past everything in use, and the backing pointer (offset and size,
/// 12 bytes inside the first sector, so one atomic sector write) is switched to it: (new name, none), or the
/// new name with the unchanged format.</item>
/// <item>The new extension area, end marker and canonical copy of the name are written from <c>header_length</c>
/// on; the pointer's bound (the parked name) lies past them: (new name, new format).</item>
/// <item>The pointer moves to the canonical copy (same meaning), and the bytes the old layout or the parked
/// copy used are zeroed, as qemu zeroes the rest of the cluster.</item>
/// </list>
/// <para>When the name is unchanged and the new area stops before it, the area write is the commit. Without a
/// backing file yet, the new area is ignored until the pointer commits it. When cluster 0 has no room to park
/// the name, one write from the pointer to the end of the new name is made, as qemu does: if it fails the
/// image still reads (old name, none) or the unchanged format; only a torn write can mix.</para>
/// <para>Removing the backing file commits first (pointer to 0: no backing; a stale format extension is
/// ignored without a backing file), then rewrites the extensions without the format.</para>
/// </remarks>
internal static class Qcow2BackingEdit
{
    private const int PointerOffset = BackingFileOffsetOffset;

    /// <summary>The autoclear bits qemu 7.2 knows; any other one must be cleared before the image is written.</summary>
    private const Qcow2AutoclearFeatures KnownAutoclear = Qcow2AutoclearFeatures.Bitmaps | Qcow2AutoclearFeatures.RawExternalData;

    /// <summary>Reads what the plan needs from the first 112 bytes: the cluster size (bounded to 2 MiB by the format).</summary>
    public static bool TryGetClusterSize(ReadOnlySpan<byte> start, out int clusterSize)
    {
        clusterSize = 0;
        if (start.Length < V2HeaderLength || BinaryPrimitives.ReadUInt32BigEndian(start) != Magic)
        {
            return false;
        }

        uint bits = BinaryPrimitives.ReadUInt32BigEndian(start[ClusterBitsOffset..]);
        if (bits is < MinClusterBits or > MaxClusterBits)
        {
            return false;
        }

        clusterSize = 1 << (int)bits;
        return true;
    }

    /// <summary>Plans the writes that set (or, with a <see langword="null"/> name, remove) the backing file.</summary>
    /// <param name="cluster0">Cluster 0, or the whole file when it is shorter.</param>
    /// <param name="readsToEndOfFile">Whether <paramref name="cluster0"/> is the whole file.</param>
    /// <param name="name">The new backing name (UTF-8, already checked for length and NULs), or <see langword="null"/> to remove it.</param>
    /// <param name="format">The new backing format (ASCII, already checked), or <see langword="null"/> to record none (relocation keeps a missing format missing).</param>
    /// <returns>The writes, in order.</returns>
    /// <exception cref="BackingEditException">The header is malformed, uses an unknown feature, or the result does not fit.</exception>
    public static List<HeaderWrite> Plan(ReadOnlySpan<byte> cluster0, bool readsToEndOfFile, byte[]? name, byte[]? format)
    {
        Qcow2Header header = ReadEditableHeader(cluster0, readsToEndOfFile, name is not null);
        int clusterSize = header.ClusterSize;
        int headerLength = (int)header.HeaderLength;
        int oldOffset = (int)header.BackingFileOffset;
        int oldSize = oldOffset == 0 ? 0 : (int)header.BackingFileSize;
        List<Range>[] kept = CollectExtensions(cluster0, header, out int extensionsEnd);
        int oldUsedEnd = Math.Max(extensionsEnd, oldOffset + oldSize);

        // Build the new area in place over a copy of cluster 0, as qcow2_update_header lays it out.
        byte[] image = new byte[clusterSize];
        cluster0[..Math.Min(cluster0.Length, clusterSize)].CopyTo(image);
        Array.Clear(image, headerLength, clusterSize - headerLength);
        int cursor = WriteExtensions(image, headerLength, cluster0, name is not null ? format : null, kept);
        int nameOffset = cursor;
        if (name is not null)
        {
            if (name.Length > clusterSize - cursor)
            {
                throw DoesNotFit(clusterSize);
            }

            name.CopyTo(image, cursor);
            cursor += name.Length;
        }

        int newEnd = cursor;
        var writes = new List<HeaderWrite>();
        if (header.Version >= 3 && (header.AutoclearFeatures & ~KnownAutoclear) != 0)
        {
            writes.Add(new HeaderWrite(AutoclearFeaturesOffset, BigEndian((ulong)(header.AutoclearFeatures & KnownAutoclear))));
        }

        var layout = new NewLayout(image, headerLength, nameOffset, newEnd, oldUsedEnd);
        int zeroEnd = name is null ? PlanRemoval(in layout, writes)
            : oldOffset == 0 ? PlanFirstBacking(in layout, name, writes)
            : PlanReplacement(in layout, cluster0, header, kept, name, format, writes);

        // qemu zeroes the rest of the cluster: whatever the old layout or the parked copy used is cleared last.
        zeroEnd = Math.Min(zeroEnd, clusterSize);
        if (zeroEnd > newEnd)
        {
            writes.Add(new HeaderWrite(newEnd, new byte[zeroEnd - newEnd]));
        }

        return writes;
    }

    /// <summary>The new cluster-0 layout the writes move the image to.</summary>
    /// <param name="Image">Cluster 0 as it will be.</param>
    /// <param name="HeaderLength">Where the extension area starts.</param>
    /// <param name="NameOffset">Where the canonical copy of the new name starts (right after the end marker).</param>
    /// <param name="NewEnd">Where the new layout ends.</param>
    /// <param name="OldUsedEnd">Where the old layout (its extensions or its name) ended.</param>
    private readonly record struct NewLayout(byte[] Image, int HeaderLength, int NameOffset, int NewEnd, int OldUsedEnd)
    {
        public byte[] Area => Image[HeaderLength..NewEnd];
    }

    /// <summary>
    /// The checks qemu makes before <c>qemu-img rebase -u</c> may write: the header opens (qcow2_do_open), the image
    /// is not marked corrupt (qemu opens such an image read-only), a backing file is allowed beside the data file,
    /// no other metadata shares cluster 0, and the old name lies where the header says.
    /// </summary>
    private static Qcow2Header ReadEditableHeader(ReadOnlySpan<byte> cluster0, bool readsToEndOfFile, bool setsBacking)
    {
        HeaderError error = Qcow2Header.Read(cluster0, readsToEndOfFile, out Qcow2Header header, out _);
        if (error == HeaderError.UnsupportedFeature)
        {
            throw new BackingEditException(BackingEditError.UnsupportedFeature, "the image uses a qcow2 feature that is not supported; it is left as it is");
        }

        if (error != HeaderError.None)
        {
            throw new BackingEditException(BackingEditError.MalformedHeader, $"the qcow2 header is malformed ({error}); it is left as it is");
        }

        if (header.IsCorrupt)
        {
            // qemu refuses to open a corrupt image read/write.
            throw new BackingEditException(BackingEditError.UnsupportedFeature, "the image is marked corrupt; repair it with 'qemu-img check -r all' first");
        }

        if (setsBacking && header.IsExternalDataRaw)
        {
            throw new BackingEditException(BackingEditError.RawDataFileWithBacking, "a backing file cannot be used with a raw external data file (data_file_raw)");
        }

        int oldOffset = (int)header.BackingFileOffset;
        int oldSize = oldOffset == 0 ? 0 : (int)header.BackingFileSize;
        CheckNothingElseInCluster0(header);
        if (oldOffset != 0 && (oldOffset < (int)header.HeaderLength || oldOffset + oldSize > cluster0.Length))
        {
            throw new BackingEditException(BackingEditError.MalformedHeader, "the backing file name overlaps the header or lies past the end of the file");
        }

        return header;
    }

    /// <summary>
    /// The extensions as qcow2_read_extensions reads them: from header_length to the old name (or the end of cluster
    /// 0), up to the end marker; grouped in the order qcow2_update_header writes them back. The backing format is
    /// left out (it is replaced, or dropped with the backing file), and so is a bitmaps extension qemu would not
    /// honour. Returns the groups and, in <paramref name="end"/>, where the area ended.
    /// </summary>
    private static List<Range>[] CollectExtensions(ReadOnlySpan<byte> cluster0, Qcow2Header header, out int end)
    {
        int oldOffset = (int)header.BackingFileOffset;
        int bound = oldOffset != 0 ? oldOffset : header.ClusterSize;
        var dataFiles = new List<Range>();
        var encryption = new List<Range>();
        var featureTables = new List<Range>();
        var bitmaps = new List<Range>();
        var unknown = new List<Range>();
        int position = (int)header.HeaderLength;
        while (position < bound && position + ExtensionHeaderSize <= cluster0.Length)
        {
            uint magic = BinaryPrimitives.ReadUInt32BigEndian(cluster0[position..]);
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(cluster0[(position + sizeof(uint))..]);
            if (magic == ExtensionEnd)
            {
                position += ExtensionHeaderSize;
                break;
            }

            // The whole record, header included, so it can be copied verbatim. The parser already bounded the length.
            int recordEnd = position + ExtensionHeaderSize + length;
            if (recordEnd > cluster0.Length)
            {
                throw new BackingEditException(BackingEditError.MalformedHeader, "a qcow2 header extension runs past the end of the file");
            }

            var record = new Range(position, recordEnd);
            switch (magic)
            {
                case ExtensionBackingFormat:
                    break; // replaced (or dropped when the backing file is removed)
                case ExtensionExternalDataFile:
                    dataFiles.Add(record);
                    break;
                case ExtensionFullDiskEncryption:
                    encryption.Add(record);
                    break;
                case ExtensionFeatureNameTable:
                    featureTables.Add(record);
                    break;
                case ExtensionBitmaps:
                    // qemu drops a bitmaps extension it does not honour (autoclear bit 0 clear) when it rewrites the header.
                    if (header.HasConsistentBitmaps && header.Version >= 3)
                    {
                        bitmaps.Add(record);
                    }

                    break;
                default:
                    unknown.Add(record);
                    break;
            }

            position = (int)Math.Min(bound, (long)recordEnd + Padding(length));
        }

        end = position;
        return [dataFiles, encryption, featureTables, bitmaps, unknown];
    }

    /// <summary>Removing the backing file: commit first (pointer to 0, no backing; a stale format extension means nothing without one), then the area.</summary>
    private static int PlanRemoval(in NewLayout layout, List<HeaderWrite> writes)
    {
        writes.Add(new HeaderWrite(PointerOffset, Pointer(0, 0)));
        writes.Add(new HeaderWrite(layout.HeaderLength, layout.Area));
        return layout.OldUsedEnd;
    }

    /// <summary>No backing file yet: the new area is ignored until the pointer commits it.</summary>
    private static int PlanFirstBacking(in NewLayout layout, byte[] name, List<HeaderWrite> writes)
    {
        writes.Add(new HeaderWrite(layout.HeaderLength, layout.Area));
        writes.Add(new HeaderWrite(PointerOffset, Pointer(layout.NameOffset, name.Length)));
        return layout.OldUsedEnd;
    }

    /// <summary>
    /// Replacing a backing file: drop a changing format first, then commit the name by the pointer, parking the new
    /// name past everything in use when cluster 0 has room. Returns how far the old bytes reach, for the zeroing.
    /// </summary>
    private static int PlanReplacement(
        in NewLayout layout, ReadOnlySpan<byte> cluster0, Qcow2Header header, List<Range>[] kept, byte[] name, byte[]? format, List<HeaderWrite> writes)
    {
        int clusterSize = header.ClusterSize;
        int headerLength = layout.HeaderLength;
        int oldOffset = (int)header.BackingFileOffset;
        ReadOnlySpan<byte> oldName = cluster0.Slice(oldOffset, (int)header.BackingFileSize);
        bool nameChanges = !oldName.SequenceEqual(name);
        bool formatChanges = header.HasBackingFormat && (format is null || !cluster0[header.BackingFormatRange].SequenceEqual(format));
        if (formatChanges)
        {
            // The old name must never be paired with the new format (that would bless the old image with a
            // format nobody recorded for it), nor the new name with the old one: first drop the format. A name
            // without a format is probed, which the trust rule refuses unless the image is raw or trusted.
            byte[] stripped = new byte[clusterSize];
            int strippedEnd = WriteExtensions(stripped, headerLength, cluster0, null, kept);
            if (strippedEnd > oldOffset)
            {
                throw new BackingEditException(BackingEditError.MalformedHeader, "the header extensions overlap the backing file name; it is left as it is");
            }

            writes.Add(new HeaderWrite(headerLength, stripped[headerLength..strippedEnd]));
        }

        int zeroEnd = layout.OldUsedEnd;
        int parked = Align(Math.Max(layout.OldUsedEnd, layout.NewEnd));
        if (!nameChanges && layout.NewEnd <= oldOffset)
        {
            // Same name, and the new area stops before it: the area write is the commit.
            writes.Add(new HeaderWrite(headerLength, layout.Area));
            writes.Add(new HeaderWrite(PointerOffset, Pointer(layout.NameOffset, name.Length)));
        }
        else if (parked + name.Length <= clusterSize)
        {
            // The new name goes to unused bytes past everything, and the pointer (12 bytes in the first
            // sector: one atomic write) switches to it, still with no format or the unchanged one. Then the new
            // area, which the pointer's bound no longer reaches, adds the format; then the pointer moves to the
            // canonical copy of the same name.
            writes.Add(new HeaderWrite(parked, name));
            writes.Add(new HeaderWrite(PointerOffset, Pointer(parked, name.Length)));
            writes.Add(new HeaderWrite(headerLength, layout.Area));
            writes.Add(new HeaderWrite(PointerOffset, Pointer(layout.NameOffset, name.Length)));
            zeroEnd = Math.Max(zeroEnd, parked + name.Length);
        }
        else
        {
            // No room to park the name: one write from the pointer to the end of the new name, as qemu does. A
            // failed write leaves the old name with no format (or the unchanged one); only a torn write can mix.
            byte[] whole = layout.Image[PointerOffset..layout.NewEnd];
            Pointer(layout.NameOffset, name.Length).CopyTo(whole, 0);
            writes.Add(new HeaderWrite(PointerOffset, whole));
        }

        return zeroEnd;
    }

    /// <summary>
    /// Writing cluster 0 is only safe if no other metadata lives there; qemu prevents that with its overlap
    /// checks, a crafted image might not.
    /// </summary>
    private static void CheckNothingElseInCluster0(Qcow2Header header)
    {
        ulong cluster = (ulong)header.ClusterSize;
        bool overlaps = header.RefcountTableOffset < cluster
            || (header.L1Size > 0 && header.L1TableOffset < cluster)
            || (header.NbSnapshots > 0 && header.SnapshotsOffset < cluster)
            || (header.HasBitmapsExtension && header.BitmapDirectoryOffset < cluster)
            || (header.HasEncryptionHeader && header.EncryptionHeaderOffset < cluster);
        if (overlaps)
        {
            throw new BackingEditException(BackingEditError.MalformedHeader, "other qcow2 metadata lies in the header cluster; it is left as it is");
        }
    }

    /// <summary>Writes the extension area from <paramref name="cursor"/>: the backing format (when given), the kept records in qemu's order, the end marker. Returns where it ends.</summary>
    private static int WriteExtensions(byte[] image, int cursor, ReadOnlySpan<byte> cluster0, byte[]? format, List<Range>[] kept)
    {
        if (format is not null)
        {
            cursor = AddExtension(image, cursor, ExtensionBackingFormat, format);
        }

        foreach (List<Range> group in kept)
        {
            foreach (Range record in group)
            {
                ReadOnlySpan<byte> bytes = cluster0[record];
                cursor = AddExtension(image, cursor, BinaryPrimitives.ReadUInt32BigEndian(bytes), bytes[ExtensionHeaderSize..]);
            }
        }

        return AddExtension(image, cursor, ExtensionEnd, []);
    }

    private static int AddExtension(byte[] image, int cursor, uint magic, ReadOnlySpan<byte> payload)
    {
        long end = (long)cursor + ExtensionHeaderSize + payload.Length + Padding(payload.Length);
        if (end > image.Length)
        {
            throw DoesNotFit(image.Length);
        }

        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(cursor), magic);
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(cursor + sizeof(uint)), (uint)payload.Length);
        payload.CopyTo(image.AsSpan(cursor + ExtensionHeaderSize));
        return (int)end;
    }

    private static int Padding(int length) => (ExtensionAlignment - (length % ExtensionAlignment)) % ExtensionAlignment;

    private static int Align(int offset) => (offset + ExtensionAlignment - 1) & ~(ExtensionAlignment - 1);

    private static byte[] Pointer(int offset, int size)
    {
        byte[] bytes = new byte[sizeof(ulong) + sizeof(uint)];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(sizeof(ulong)), (uint)size);
        return bytes;
    }

    private static byte[] BigEndian(ulong value)
    {
        byte[] bytes = new byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        return bytes;
    }

    private static BackingEditException DoesNotFit(int clusterSize) =>
        new(BackingEditError.DoesNotFit, $"the header extensions and the backing file name do not fit in the first cluster ({clusterSize} bytes)");
}
