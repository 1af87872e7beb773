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
/// <para>Order of writes, each followed by a flush. The rule: every write before the commit leaves the old (name,
/// format) as qemu reads them, the commit is one write, and every write after it leaves the new ones — so a
/// failed write or flush, or a kill at any moment, leaves the old state or the new one, never a name with
/// another's format or none. qemu reads the extensions from <c>header_length</c> up to the end marker (or up to
/// the backing name's offset), and the name at the pointer (offset and size: 12 bytes in the first sector).
/// The first of these whose commit lies within one 512-byte sector is taken, so that a power loss too leaves one
/// state or the other:</para>
/// <list type="number">
/// <item>Unknown autoclear bits are cleared first, as the spec requires of any writer; nothing else changes meaning.</item>
/// <item>Straight: the changed bytes of the new layout lie in one sector (a version 2 header, a short area): one write.</item>
/// <item>Parked name: the new name is written to unused bytes past everything in use; one write switches the
/// pointer to it and the area to the new one (typically a format of the same padded length, or a relocation:
/// the changes lie in the first sector). Then the canonical copy of the name after the end marker (which the
/// walk no longer reaches), the pointer moved to it (same meaning), and the rest zeroed.</item>
/// <item>Same name, area changes (a format recorded by <c>check --fix</c>): the name is first copied to a parked
/// place and the pointer moved there (same meaning: the old walk ends at its end marker); the bytes of the new
/// area past the old end marker are written (the old walk does not reach them); then one write changes the
/// rest of the area. When the old area reaches past the first sector, the format record is appended where the
/// old end marker was, rather than first as qemu orders it (qemu reads extensions in any order): its payload and
/// the new end marker are written first, and the switch is the 8-byte record header over the old end marker.</item>
/// <item>Otherwise (a format added or its padded length changed together with a new name, with the area past
/// the first sector, or no room to park): one write from the first changed byte to the end of the new name, as
/// qemu writes its header. A failure or a kill leaves the old state; a power loss that tears it across sectors
/// may not (docs/limits.md).</item>
/// </list>
/// <para>Without a backing file yet, the new area is written first (no backing: its format means nothing) and
/// the pointer commits it. Removing the backing file commits first (pointer to 0: no backing; a stale format
/// extension is ignored without a backing file), then rewrites the extensions without the format.</para>
/// </remarks>
internal static class Qcow2BackingEdit
{
    private const int PointerOffset = BackingFileOffsetOffset;

    /// <summary>The unit a disk writes atomically: a write within one such sector survives a power loss whole or not at all.</summary>
    private const int SectorSize = 512;

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
        List<Range>[] kept = CollectExtensions(cluster0, header, out int extensionsEnd, out bool endMarker);
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

        Pointer(name is null ? 0 : nameOffset, name?.Length ?? 0).CopyTo(image, PointerOffset);

        int newEnd = cursor;
        var plan = new Planned(cluster0, clusterSize);
        if (header.Version >= 3 && (header.AutoclearFeatures & ~KnownAutoclear) != 0)
        {
            // Unknown autoclear bits say nothing about the backing file; clearing them first changes no meaning.
            byte[] autoclear = BigEndian((ulong)(header.AutoclearFeatures & KnownAutoclear));
            plan.Write(AutoclearFeaturesOffset, autoclear);
            autoclear.CopyTo(image, AutoclearFeaturesOffset);
        }

        var layout = new NewLayout(image, headerLength, nameOffset, newEnd, oldUsedEnd);
        int zeroEnd;
        if (name is null)
        {
            zeroEnd = PlanRemoval(in layout, plan);
        }
        else if (oldOffset == 0)
        {
            zeroEnd = PlanFirstBacking(in layout, plan);
        }
        else
        {
            var old = new OldLayout(oldOffset, oldSize, extensionsEnd, endMarker, header.HasBackingFormat);
            zeroEnd = PlanReplacement(in layout, in old, plan, name, format);
        }

        // qemu zeroes the rest of the cluster: whatever the old layout or the parked copy used is cleared last.
        zeroEnd = Math.Min(zeroEnd, clusterSize);
        if (zeroEnd > newEnd)
        {
            plan.Write(newEnd, new byte[zeroEnd - newEnd]);
        }

        return plan.Writes;
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

    /// <summary>Where the old backing name lies, where the old extension walk ended, and whether an end marker ended it.</summary>
    private readonly record struct OldLayout(int NameOffset, int NameSize, int ExtensionsEnd, bool EndMarker, bool HadFormat);

    /// <summary>The planned writes, and cluster 0 as it is after them (so each next write is planned against what is on disk).</summary>
    private sealed class Planned
    {
        public Planned(ReadOnlySpan<byte> cluster0, int clusterSize)
        {
            Current = new byte[clusterSize];
            cluster0[..Math.Min(cluster0.Length, clusterSize)].CopyTo(Current);
        }

        public byte[] Current { get; }

        public List<HeaderWrite> Writes { get; private set; } = [];

        public void Write(int offset, byte[] data)
        {
            Writes.Add(new HeaderWrite(offset, data));
            data.CopyTo(Current, offset);
        }

        /// <summary>A copy to try a plan on.</summary>
        public Planned Clone() => new(Current, Current.Length) { Writes = [.. Writes] };

        /// <summary>Takes the writes and the resulting cluster 0 of a tried plan.</summary>
        public void Adopt(Planned trial)
        {
            Writes = trial.Writes;
            trial.Current.CopyTo(Current, 0);
        }
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
    private static List<Range>[] CollectExtensions(ReadOnlySpan<byte> cluster0, Qcow2Header header, out int end, out bool endMarker)
    {
        endMarker = false;
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
                endMarker = true;
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
    private static int PlanRemoval(in NewLayout layout, Planned plan)
    {
        plan.Write(PointerOffset, Pointer(0, 0));
        plan.Write(layout.HeaderLength, layout.Area);
        return layout.OldUsedEnd;
    }

    /// <summary>No backing file yet: one write in the first sector when the new layout's changes fit there; else the new area (ignored until the pointer commits it), then the pointer.</summary>
    private static int PlanFirstBacking(in NewLayout layout, Planned plan)
    {
        (int lo, int hi) = Differences(plan.Current, layout.Image, 0, layout.NewEnd);
        if (InOneSector(lo, hi))
        {
            if (hi > lo)
            {
                plan.Write(lo, layout.Image[lo..hi]);
            }

            return layout.OldUsedEnd;
        }

        plan.Write(layout.HeaderLength, layout.Area);
        plan.Write(PointerOffset, Pointer(layout.NameOffset, layout.NewEnd - layout.NameOffset));
        return layout.OldUsedEnd;
    }

    /// <summary>
    /// Replacing a backing file (or recording its format): every write before the commit leaves the old (name,
    /// format) as qemu reads them, the commit is one write, and every write after it leaves the new ones. Tried in
    /// order, the first whose commit lies within one sector is taken (see the class remarks); otherwise the commit
    /// is one write across sectors, as qemu's own. Returns how far the old bytes and the parked copy reach.
    /// </summary>
    private static int PlanReplacement(in NewLayout layout, in OldLayout old, Planned plan, byte[] name, byte[]? format)
    {
        byte[] current = plan.Current;

        // 1. Straight to the new layout, when what changes lies in one sector (a v2 header, a short area).
        (int lo, int hi) = Differences(current, layout.Image, 0, layout.NewEnd);
        if (InOneSector(lo, hi))
        {
            if (hi > lo)
            {
                plan.Write(lo, layout.Image[lo..hi]);
            }

            return layout.OldUsedEnd;
        }

        // qemu's order puts the format first; when that shifts the whole area (a format added to an image that
        // had none), the same records with the format appended where the old end marker was change only its 8 bytes.
        byte[]? appended = format is not null && !old.HadFormat && old.EndMarker ? Appended(in layout, current, old, format) : null;
        byte[][] targets = appended is null ? [layout.Image] : [layout.Image, appended];
        foreach (byte[] target in targets)
        {
            foreach (bool parkOld in (ReadOnlySpan<bool>)[false, true])
            {
                if (parkOld && !old.EndMarker)
                {
                    continue;
                }

                Planned trial = plan.Clone();
                if (TryParked(trial, target, in layout, in old, name, parkOld) is int reach)
                {
                    plan.Adopt(trial);
                    return reach;
                }
            }
        }

        // No layout lets the switch lie in one sector: one write, from the first changed byte to the end of the new
        // name, as qemu writes its header. A failed write changes nothing; only a power loss that tears it across
        // sectors can mix the two (docs/limits.md).
        plan.Write(lo, layout.Image[lo..layout.NewEnd]);
        return layout.OldUsedEnd;
    }

    /// <summary>
    /// Plans the switch through parked copies, or returns <see langword="null"/> when its commit would not lie in one
    /// sector. With <paramref name="parkOld"/>, the old name is first copied past everything and the pointer moved to
    /// it (same meaning: the old walk ends at its end marker), which frees the bytes after the old end marker. The new
    /// name is parked too (unless it is the old one), the new area's bytes the old walk does not reach are written,
    /// then one write switches the pointer and the rest of the area; then the canonical copy of the name, which the
    /// walk no longer reaches, and the pointer moved to it (same meaning). Returns how far the parked copies reach.
    /// </summary>
    private static int? TryParked(Planned plan, byte[] target, in NewLayout layout, in OldLayout old, byte[] name, bool parkOld)
    {
        byte[] current = plan.Current;
        int nameOffset = layout.NameOffset;
        int reach = Math.Max(layout.OldUsedEnd, layout.NewEnd);
        int oldNameAt = old.NameOffset;
        bool sameName = current.AsSpan(old.NameOffset, old.NameSize).SequenceEqual(name);
        if (parkOld)
        {
            int copy = Align(reach);
            if (copy + old.NameSize > current.Length)
            {
                return null;
            }

            plan.Write(copy, current[old.NameOffset..(old.NameOffset + old.NameSize)]);
            plan.Write(PointerOffset, Pointer(copy, old.NameSize));
            oldNameAt = copy;
            reach = copy + old.NameSize;
        }

        int parked = oldNameAt;
        if (!(parkOld && sameName))
        {
            parked = Align(reach);
            if (parked + name.Length > current.Length)
            {
                return null;
            }

            plan.Write(parked, name);
            reach = parked + name.Length;
        }

        // What the new area holds past the old walk's end, where the old name no longer is: unread until the commit.
        if (old.ExtensionsEnd < nameOffset)
        {
            (int from, int to) = Differences(current, target, old.ExtensionsEnd, nameOffset);
            if (to > from && (to <= oldNameAt || from >= oldNameAt + old.NameSize))
            {
                plan.Write(from, target[from..to]);
            }
        }

        byte[] commit = target[..nameOffset];
        Pointer(parked, name.Length).CopyTo(commit, PointerOffset);
        (int lo, int hi) = Differences(current, commit, 0, nameOffset);
        if (!InOneSector(lo, hi))
        {
            return null;
        }

        if (hi > lo)
        {
            plan.Write(lo, commit[lo..hi]);
        }

        (lo, hi) = Differences(current, target, nameOffset, layout.NewEnd);
        if (hi > lo)
        {
            plan.Write(lo, target[lo..hi]);
        }

        plan.Write(PointerOffset, Pointer(nameOffset, name.Length));
        return reach;
    }

    /// <summary>
    /// The new layout with the backing format appended after the old records (where the old end marker was)
    /// instead of first: qemu reads extensions in any order. <see langword="null"/> unless the old area holds
    /// exactly the records the new one keeps.
    /// </summary>
    private static byte[]? Appended(in NewLayout layout, byte[] current, in OldLayout old, byte[] format)
    {
        int record = ExtensionHeaderSize + format.Length + Padding(format.Length);
        int oldRecordsEnd = old.ExtensionsEnd - ExtensionHeaderSize;
        int newRecordsEnd = layout.NameOffset - ExtensionHeaderSize;
        ReadOnlySpan<byte> kept = layout.Image.AsSpan(layout.HeaderLength + record, newRecordsEnd - layout.HeaderLength - record);
        if (oldRecordsEnd < layout.HeaderLength || !current.AsSpan(layout.HeaderLength, oldRecordsEnd - layout.HeaderLength).SequenceEqual(kept))
        {
            return null;
        }

        byte[] image = (byte[])layout.Image.Clone();
        kept.ToArray().CopyTo(image, layout.HeaderLength);
        int cursor = AddExtension(image, layout.HeaderLength + kept.Length, ExtensionBackingFormat, format);
        AddExtension(image, cursor, ExtensionEnd, []);
        return image;
    }

    /// <summary>The first and one past the last byte in [<paramref name="from"/>, <paramref name="to"/>) where the two differ; (0, 0) when none does.</summary>
    private static (int Lo, int Hi) Differences(byte[] a, byte[] b, int from, int to)
    {
        int lo = from + a.AsSpan(from, to - from).CommonPrefixLength(b.AsSpan(from, to - from));
        if (lo == to)
        {
            return (0, 0);
        }

        int hi = to;
        while (a[hi - 1] == b[hi - 1])
        {
            hi--;
        }

        return (lo, hi);
    }

    /// <summary>Whether [<paramref name="lo"/>, <paramref name="hi"/>) lies within one 512-byte sector, which a disk writes whole or not at all.</summary>
    private static bool InOneSector(int lo, int hi) => hi <= lo || lo / SectorSize == (hi - 1) / SectorSize;

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
