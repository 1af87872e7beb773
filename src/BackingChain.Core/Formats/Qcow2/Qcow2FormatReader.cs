using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Formats.Luks;

namespace BackingChain.Formats.Qcow2;

/// <summary>Reads a qcow2 layer: the header, its extensions, and what <c>qemu-img info</c> shows beyond them.</summary>
internal sealed class Qcow2FormatReader : IImageFormatReader
{
    public static Qcow2FormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Qcow2;

    public string QemuName => "qcow2";

    public string? LibvirtName => "qcow2";

    public bool QemuOpensBacking => true;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => true;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = [SignatureRule.QemuProbe("qcow2")];

    /// <summary>qcow2_probe: the magic and a version of at least 2.</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) =>
        head.Length >= Qcow2Layout.FullHeaderLength
        && BinaryPrimitives.ReadUInt32BigEndian(head) == Qcow2Layout.Magic
        && BinaryPrimitives.ReadUInt32BigEndian(head[Qcow2Layout.VersionOffset..]) >= 2 ? 100 : 0;

    public ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        // Nearly every layer: the header, its extensions and the backing name lie in the head the walk read already,
        // and there is no LUKS header, bitmap directory or snapshot table to read. Then the layer is described here,
        // without a state machine.
        if (!HeaderReads.TryParseHead<Qcow2Header>(context, ParseHeader, long.MaxValue, out ParsedHeader<Qcow2Header> read))
        {
            return ReadWithMoreAsync(context, cancellationToken);
        }

        ReadOnlySpan<byte> head = read.Data.Span;
        if (read.Error != HeaderError.None)
        {
            return new ValueTask<LayerFacts>(LayerFacts.Failed(read.Error, Qcow2Messages.Describe(read.Error, head)));
        }

        Qcow2Header header = read.Header;
        bool readsMore = (header.CryptMethod == Qcow2EncryptionMethod.Luks && header.HasEncryptionHeader)
            || header.HasBitmapsExtension || header.NbSnapshots > 0;
        return readsMore
            ? ReadWithMoreAsync(context, cancellationToken)
            : new ValueTask<LayerFacts>(Describe(context, header, head, luks: null, ImmutableArray<Qcow2Bitmap>.Empty, ImmutableArray<Qcow2Snapshot>.Empty));
    }

    /// <summary>A layer whose header runs past the head, or that has a LUKS header, bitmaps or snapshots to read.</summary>
    private static async ValueTask<LayerFacts> ReadWithMoreAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        // The extensions and the backing name lie within cluster 0 (at most 2 MiB), so they are read with the header.
        ParsedHeader<Qcow2Header> read = await HeaderReads.ReadUntilParsedAsync<Qcow2Header>(context, ParseHeader, long.MaxValue, cancellationToken).ConfigureAwait(false);
        ReadOnlyMemory<byte> data = read.Data;
        if (read.Error != HeaderError.None)
        {
            return LayerFacts.Failed(read.Error, Qcow2Messages.Describe(read.Error, data.Span));
        }

        Qcow2Header header = read.Header;

        LuksFormatInfo? luks = null;
        if (header.CryptMethod == Qcow2EncryptionMethod.Luks && header.HasEncryptionHeader)
        {
            ReadOnlyMemory<byte> luksData = await context.ReadAsync((long)header.EncryptionHeaderOffset, LuksLayout.HeaderLength, cancellationToken).ConfigureAwait(false);
            // qemu opens the LUKS header even without a key and refuses the image when it would refuse the header.
            string? luksProblem = LuksFormatReader.Validate(luksData.Span, out Luks1Header luksHeader, out HeaderError luksError);
            if (luksProblem is not null)
            {
                return LayerFacts.Failed(luksError, luksProblem);
            }

            luks = LuksFormatInfo.FromHeader(luksData.Span, luksHeader);
        }

        ImmutableArray<Qcow2Bitmap> bitmaps = header.HasBitmapsExtension
            ? await ReadBitmapsAsync(context, header, cancellationToken).ConfigureAwait(false)
            : ImmutableArray<Qcow2Bitmap>.Empty;
        ImmutableArray<Qcow2Snapshot> snapshots = header.NbSnapshots > 0
            ? await ReadSnapshotsAsync(context, header, cancellationToken).ConfigureAwait(false)
            : ImmutableArray<Qcow2Snapshot>.Empty;

        return Describe(context, header, read.Data.Span, luks, bitmaps, snapshots);
    }

    /// <summary>The layer's facts from its parsed header (in <paramref name="data"/>) and what was read beside it.</summary>
    private static LayerFacts Describe(
        LayerReadContext context, Qcow2Header header, ReadOnlySpan<byte> data, LuksFormatInfo? luks, ImmutableArray<Qcow2Bitmap> bitmaps, ImmutableArray<Qcow2Snapshot> snapshots)
    {
        string? backingName = header.GetBackingFileName(data);
        string? backingFormat = header.GetBackingFormat(data);
        string? dataFile = header.Version >= 3 ? header.GetExternalDataFileName(data) : null;

        bool v3 = header.Version >= 3;
        var info = new Qcow2FormatInfo
        {
            Compat = v3 ? "1.1" : "0.10",
            RefcountBits = header.RefcountBits,
            CompressionType = header.CompressionType,
            LazyRefcounts = v3 ? header.HasLazyRefcounts : null,
            Corrupt = v3 ? header.IsCorrupt : null,
            ExtendedL2 = v3 ? header.HasExtendedL2 : null,
            DataFile = dataFile,
            DataFileRaw = v3 && header.HasExternalDataFile ? header.IsExternalDataRaw : null,
            EncryptionFormat = header.CryptMethod switch
            {
                Qcow2EncryptionMethod.Aes => "aes",
                Qcow2EncryptionMethod.Luks => "luks",
                _ => null,
            },
            Luks = luks,
            Bitmaps = bitmaps,
            Snapshots = snapshots,
        };

        var facts = new LayerFacts(context)
        {
            VirtualSize = (long)header.VirtualSize,
            ClusterSize = header.ClusterSize,
            DirtyFlag = header.IsDirty,
            Encrypted = header.CryptMethod != Qcow2EncryptionMethod.None,
            FormatSpecific = info,
        };

        NoteStructureProblems(header, dataFile, context.Source.Length, facts.StructureProblems);

        if (backingName is { Length: > 0 })
        {
            facts.References.Add(new StoredReference(backingName, ReferenceRole.BackingFile, backingFormat));
        }

        // The data file holds the guest's data: a reference like the backing file. Always raw.
        if (header.HasExternalDataFile && dataFile is { Length: > 0 })
        {
            facts.References.Add(new StoredReference(dataFile, ReferenceRole.ExternalDataFile, "raw"));
        }

        return facts;
    }

    /// <summary>
    /// What an image from someone else must not have, though qemu 7.2 opens it: metadata tables inside cluster 0 (a
    /// guest write to the table would rewrite the header after it was judged) or past the end of the file (qemu
    /// allocates there later), LUKS encryption without its encryption header (qemu 7.2 crashes on it), and an
    /// external data file named without its feature bit or flagged without a name. Also the corrupt bit: qemu found
    /// the metadata inconsistent and opens the image only read-only until it is repaired.
    /// </summary>
    private static void NoteStructureProblems(Qcow2Header header, string? dataFile, long fileLength, List<string> problems)
    {
        if (header.IsCorrupt)
        {
            problems.Add("the image is marked corrupt (incompatible feature bit 1): qemu opens it read-only until 'qemu-img check -r all' repairs it");
        }

        ulong cluster = (ulong)header.ClusterSize;
        ulong length = (ulong)Math.Max(0, fileLength);
        CheckTable(problems, "L1 table", header.L1TableOffset, (ulong)header.L1Size * 8, cluster, length);
        CheckTable(problems, "refcount table", header.RefcountTableOffset, (ulong)header.RefcountTableClusters * cluster, cluster, length);
        if (header.NbSnapshots > 0)
        {
            // At least one entry header (40 bytes) lies at the offset; the rest was bounded when the table was read.
            CheckTable(problems, "snapshot table", header.SnapshotsOffset, 40, cluster, length);
        }

        if (header.CryptMethod == Qcow2EncryptionMethod.Luks && !header.HasEncryptionHeader)
        {
            problems.Add("the image claims LUKS encryption but has no encryption header extension");
        }

        if (header.HasExternalDataFile && string.IsNullOrEmpty(dataFile))
        {
            problems.Add("the external-data-file feature bit is set but no data file is named");
        }
        else if (!header.HasExternalDataFile && header.HasExternalDataFileName)
        {
            problems.Add("a data file is named but the external-data-file feature bit is not set");
        }
    }

    private static void CheckTable(List<string> problems, string table, ulong offset, ulong size, ulong cluster, ulong fileLength)
    {
        if (size == 0)
        {
            return;
        }

        if (offset < cluster)
        {
            problems.Add($"the {table} (offset {offset}) overlaps the header cluster");
        }
        else if (offset > fileLength || size > fileLength - offset)
        {
            problems.Add($"the {table} (offset {offset}, {size} bytes) lies past the end of the file ({fileLength} bytes)");
        }
    }

    /// <summary>Bitmap directory entries: table offset u64, table size u32, flags u32, type u8, granularity bits u8, name size u16, extra size u32, extra, name, pad to 8.</summary>
    private static async ValueTask<ImmutableArray<Qcow2Bitmap>> ReadBitmapsAsync(LayerReadContext context, Qcow2Header header, CancellationToken cancellationToken)
    {
        const int EntryHeaderSize = 24;
        ReadOnlyMemory<byte> directory = await context.ReadAsync((long)header.BitmapDirectoryOffset, (int)header.BitmapDirectorySize, cancellationToken).ConfigureAwait(false);
        var bitmaps = ImmutableArray.CreateBuilder<Qcow2Bitmap>();
        int offset = 0;
        for (uint i = 0; i < header.NbBitmaps; i++)
        {
            ReadOnlySpan<byte> span = directory.Span;
            if (offset + EntryHeaderSize > span.Length)
            {
                break;
            }

            uint flags = BinaryPrimitives.ReadUInt32BigEndian(span[(offset + 12)..]);
            int granularityBits = span[offset + 17];
            int nameSize = BinaryPrimitives.ReadUInt16BigEndian(span[(offset + 18)..]);
            uint extraSize = BinaryPrimitives.ReadUInt32BigEndian(span[(offset + 20)..]);
            long nameStart = (long)offset + EntryHeaderSize + extraSize;
            if (granularityBits > 63 || nameSize > Qcow2Layout.MaxBitmapNameSize || nameStart + nameSize > span.Length)
            {
                break;
            }

            string name = CString.ToDisplayString(span.Slice((int)nameStart, nameSize));
            bitmaps.Add(new Qcow2Bitmap(name, 1L << granularityBits, (flags & 1) != 0, (flags & 2) != 0));
            offset = (int)((nameStart + nameSize + 7) & ~7L);
        }

        return bitmaps.ToImmutable();
    }

    /// <summary>
    /// QCowSnapshotHeader entries (block/qcow2.h), each followed by extra data, id and name, padded to 8. qemu's
    /// limits are applied before anything is read that they bound: at most 1 KiB of extra data per entry and
    /// 64 MiB for the table so far, counted as qemu counts it (entry header, extra data, id and name, padded).
    /// </summary>
    private static async ValueTask<ImmutableArray<Qcow2Snapshot>> ReadSnapshotsAsync(LayerReadContext context, Qcow2Header header, CancellationToken cancellationToken)
    {
        const int ExtraIcountEnd = 24;
        var snapshots = ImmutableArray.CreateBuilder<Qcow2Snapshot>();
        long offset = (long)header.SnapshotsOffset;
        long tableLength = 0;
        for (uint i = 0; i < header.NbSnapshots; i++)
        {
            ReadOnlyMemory<byte> fixedPart = await context.ReadAsync(offset, Qcow2Layout.SnapshotHeaderSize, cancellationToken).ConfigureAwait(false);
            if (fixedPart.Length < Qcow2Layout.SnapshotHeaderSize)
            {
                break;
            }

            ReadOnlySpan<byte> f = fixedPart.Span;
            int idSize = BinaryPrimitives.ReadUInt16BigEndian(f[12..]);
            int nameSize = BinaryPrimitives.ReadUInt16BigEndian(f[14..]);
            uint dateSeconds = BinaryPrimitives.ReadUInt32BigEndian(f[16..]);
            uint dateNanoseconds = BinaryPrimitives.ReadUInt32BigEndian(f[20..]);
            ulong vmClock = BinaryPrimitives.ReadUInt64BigEndian(f[24..]);
            long vmStateSize = BinaryPrimitives.ReadUInt32BigEndian(f[32..]);
            uint extraSize = BinaryPrimitives.ReadUInt32BigEndian(f[36..]);
            if (extraSize > Qcow2Layout.MaxSnapshotExtraData)
            {
                throw new ImageFormatException(HeaderError.InvalidSize, $"Too much extra metadata in snapshot table entry {i}");
            }

            int restLength = (int)extraSize + idSize + nameSize;
            tableLength = ((tableLength + 7) & ~7L) + Qcow2Layout.SnapshotHeaderSize + restLength;
            if (tableLength > Qcow2Layout.MaxSnapshotTableSize)
            {
                throw new ImageFormatException(HeaderError.InvalidSize, "Snapshot table is too big");
            }

            ReadOnlyMemory<byte> restMemory = await context.ReadAsync(offset + Qcow2Layout.SnapshotHeaderSize, restLength, cancellationToken).ConfigureAwait(false);
            ReadOnlySpan<byte> rest = restMemory.Span;
            if (rest.Length < restLength)
            {
                break;
            }

            long icount = -1;
            if (extraSize >= sizeof(ulong))
            {
                vmStateSize = BinaryPrimitives.ReadInt64BigEndian(rest);
            }

            if (extraSize >= ExtraIcountEnd)
            {
                icount = BinaryPrimitives.ReadInt64BigEndian(rest[16..]);
            }

            // Shown by qemu-img info, never opened: qemu prints the bytes as they are, so a display decode is enough.
            string id = CString.ToDisplayString(rest.Slice((int)extraSize, idSize));
            string name = CString.ToDisplayString(rest.Slice((int)extraSize + idSize, nameSize));
            snapshots.Add(new Qcow2Snapshot(id, name, vmStateSize, dateSeconds, dateNanoseconds, vmClock, icount));
            offset += (Qcow2Layout.SnapshotHeaderSize + restLength + 7) & ~7L;
        }

        return snapshots.ToImmutable();
    }

    /// <summary>qcow2's header checks do not depend on the file length; its parser counts in <see cref="int"/> (cluster 0 is small).</summary>
    private static HeaderError ParseHeader(ReadOnlySpan<byte> data, long fileLength, bool dataReachesEndOfFile, out Qcow2Header header, out long bytesNeeded)
    {
        HeaderError error = Qcow2Header.Read(data, dataReachesEndOfFile, out header, out int required);
        bytesNeeded = required;
        return error;
    }
}
