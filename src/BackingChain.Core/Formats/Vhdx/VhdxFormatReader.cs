using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Numerics;
using System.Threading;
using System.Threading.Tasks;
using static BackingChain.Formats.Vhdx.VhdxLayout;

namespace BackingChain.Formats.Vhdx;

/// <summary>
/// Reads a VHDX layer with qemu 7.2's open checks (<c>vhdx_open</c>): file signature, current header, region
/// table, metadata, BAT size and payload block bounds. Where qemu refuses a differencing file ("Operation not
/// supported"), this reader reads its parent locator, so the resolver can follow and judge the parent.
/// </summary>
internal sealed class VhdxFormatReader : IImageFormatReader
{
    private const string InvalidArgument = "Invalid argument";
    private const string NotSupported = "Operation not supported";

    public static VhdxFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Vhdx;

    public string QemuName => "vhdx";

    public string? LibvirtName => null;

    public bool QemuOpensBacking => false;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = [SignatureRule.QemuProbe("vhdx")];

    /// <summary>vhdx_probe: "vhdxfile" at offset 0.</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) =>
        head.Length >= sizeof(ulong) && BinaryPrimitives.ReadUInt64LittleEndian(head) == FileSignature ? 100 : 0;

    /// <summary>
    /// vhdx_open's steps, one method each, in qemu's order so the first failure is the one qemu reports: the
    /// signature and the active header, the log, region table 1, the metadata (with the parent locator), the
    /// geometry, and the BAT. Every area registered on the way must not overlap the ones after it.
    /// </summary>
    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        long fileLength = HeaderReads.RoundedLength(context.Source.Length);
        (LayerFacts? failure, VhdxHeader header) = await ReadActiveHeaderAsync(context, cancellationToken).ConfigureAwait(false);
        if (failure.HasValue)
        {
            return failure.Value;
        }

        var regions = new List<(ulong Start, ulong End)>();
        Register(regions, header.LogOffset, header.LogLength);
        failure = await CheckLogAsync(context, header, cancellationToken).ConfigureAwait(false);
        if (failure.HasValue)
        {
            return failure.Value;
        }

        (failure, VhdxRegionTableEntry batRegion, VhdxRegionTableEntry metadataRegion) = await ReadRegionTableAsync(context, regions, cancellationToken).ConfigureAwait(false);
        if (failure.HasValue)
        {
            return failure.Value;
        }

        var references = new List<StoredReference>();
        (failure, Metadata metadata) = await ReadMetadataAsync(context, metadataRegion, references, cancellationToken).ConfigureAwait(false);
        if (failure.HasValue)
        {
            return failure.Value;
        }

        failure = CheckGeometry(in metadata, batRegion, out ulong totalSectors, out ulong chunkRatio, out uint batEntries);
        if (failure.HasValue)
        {
            return failure.Value;
        }

        string? batError = await CheckBatAsync(context, batRegion.FileOffset, batEntries, metadata.BlockSize, chunkRatio, (long)totalSectors * 512, fileLength, regions, cancellationToken).ConfigureAwait(false);
        if (batError is not null)
        {
            return Fail(HeaderError.InvalidOffset, batError);
        }

        var facts = new LayerFacts(context)
        {
            VirtualSize = (long)totalSectors * 512,
            ClusterSize = (int)metadata.BlockSize,
            DirtyFlag = false,
        };
        facts.References.AddRange(references);
        return facts;
    }

    /// <summary>The file-parameters, size and sector-size items, read before they are judged.</summary>
    private readonly record struct Metadata(uint BlockSize, bool HasParent, ulong VirtualDiskSize, uint LogicalSectorSize);

    /// <summary>
    /// vhdx_parse_header: the file signature, then of the two headers the valid one with the larger sequence
    /// number; equal numbers only when byte-identical (Disk2VHD writes them so).
    /// </summary>
    private static async ValueTask<(LayerFacts? Failure, VhdxHeader Header)> ReadActiveHeaderAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        byte[] signature = (await HeaderReads.ReadPaddedAsync(context, 0, sizeof(ulong), cancellationToken).ConfigureAwait(false))!;
        if (BinaryPrimitives.ReadUInt64LittleEndian(signature) != FileSignature)
        {
            return (Fail(HeaderError.BadMagic, InvalidArgument), default);
        }

        byte[] first = (await HeaderReads.ReadPaddedAsync(context, Header1Offset, HeaderSize, cancellationToken).ConfigureAwait(false))!;
        byte[] second = (await HeaderReads.ReadPaddedAsync(context, Header2Offset, HeaderSize, cancellationToken).ConfigureAwait(false))!;
        bool firstValid = VhdxHeader.Read(first, out VhdxHeader header1) == HeaderError.None;
        bool secondValid = VhdxHeader.Read(second, out VhdxHeader header2) == HeaderError.None;
        if (firstValid && secondValid)
        {
            if (header1.SequenceNumber != header2.SequenceNumber)
            {
                return (null, header1.SequenceNumber > header2.SequenceNumber ? header1 : header2);
            }

            return first.AsSpan().SequenceEqual(second)
                ? (null, header1)
                : (Fail(HeaderError.Inconsistent, "No valid VHDX header found"), default);
        }

        if (firstValid || secondValid)
        {
            return (null, firstValid ? header1 : header2);
        }

        return (Fail(HeaderError.BadChecksum, "No valid VHDX header found"), default);
    }

    /// <summary>vhdx_parse_log: qemu replays the log, and refuses a read-only open while it holds entries.</summary>
    private static async ValueTask<LayerFacts?> CheckLogAsync(LayerReadContext context, VhdxHeader header, CancellationToken cancellationToken)
    {
        if (header.LogGuid == Guid.Empty || header.LogLength == 0)
        {
            return null;
        }

        if (header.LogLength % HeaderSectionSize != 0)
        {
            return Fail(HeaderError.InvalidSize, InvalidArgument);
        }

        byte[]? log = await HeaderReads.ReadPaddedAsync(context, header.LogOffset, sizeof(uint), cancellationToken).ConfigureAwait(false);
        if (log is not null && BinaryPrimitives.ReadUInt32LittleEndian(log) == LogEntrySignature)
        {
            return Fail(HeaderError.UnsupportedFeature, $"VHDX image file '{context.Source.Name}' opened read-only, but contains a log that needs to be replayed");
        }

        return null;
    }

    /// <summary>
    /// vhdx_open_region_tables, on region table 1 only (qemu never reads the second copy): exactly one BAT and one
    /// metadata region, no unknown required region, and no region overlapping another or the log.
    /// </summary>
    private static async ValueTask<(LayerFacts? Failure, VhdxRegionTableEntry Bat, VhdxRegionTableEntry Metadata)> ReadRegionTableAsync(
        LayerReadContext context, List<(ulong Start, ulong End)> regions, CancellationToken cancellationToken)
    {
        byte[] regionBytes = (await HeaderReads.ReadPaddedAsync(context, RegionTable1Offset, RegionTableSize, cancellationToken).ConfigureAwait(false))!;
        if (VhdxRegionTable.Read(regionBytes, out VhdxRegionTable regionTable) != HeaderError.None)
        {
            return (Fail(HeaderError.InvalidExtension, InvalidArgument), default, default);
        }

        VhdxRegionTableEntry? bat = null, metadata = null;
        for (int i = 0; i < regionTable.EntryCount; i++)
        {
            VhdxRegionTableEntry entry = regionTable.GetEntry(regionBytes, i);
            if (Overlaps(regions, entry.FileOffset, entry.Length))
            {
                return (Fail(HeaderError.InvalidOffset, InvalidArgument), default, default);
            }

            Register(regions, entry.FileOffset, entry.Length);
            if (entry.Guid == BatRegion || entry.Guid == MetadataRegion)
            {
                bool isBat = entry.Guid == BatRegion;
                if ((isBat ? bat : metadata) is not null)
                {
                    return (Fail(HeaderError.Inconsistent, InvalidArgument), default, default);
                }

                if (isBat)
                {
                    bat = entry;
                }
                else
                {
                    metadata = entry;
                }
            }
            else if (entry.Required)
            {
                return (Fail(HeaderError.UnsupportedFeature, NotSupported), default, default);
            }
        }

        if (bat is not { } batRegion || metadata is not { } metadataRegion)
        {
            return (Fail(HeaderError.Inconsistent, InvalidArgument), default, default);
        }

        return (null, batRegion, metadataRegion);
    }

    /// <summary>
    /// vhdx_parse_metadata: the metadata table, each known item at most once, no unknown required item, the five
    /// items every file needs; their values; and for a differencing file the parent locator (qemu: a parent flag
    /// without a locator is invalid; with one it is "not supported", and we read it).
    /// </summary>
    private static async ValueTask<(LayerFacts? Failure, Metadata Metadata)> ReadMetadataAsync(
        LayerReadContext context, VhdxRegionTableEntry metadataRegion, List<StoredReference> references, CancellationToken cancellationToken)
    {
        byte[]? tableBytes = await HeaderReads.ReadPaddedAsync(context, metadataRegion.FileOffset, MetadataTableSize, cancellationToken).ConfigureAwait(false);
        if (tableBytes is null || VhdxMetadataTable.Read(tableBytes, out VhdxMetadataTable table) != HeaderError.None)
        {
            return (Fail(HeaderError.InvalidExtension, InvalidArgument), default);
        }

        var items = new VhdxMetadataTableEntry[KnownItemCount];
        bool[] present = new bool[KnownItemCount];
        for (int i = 0; i < table.EntryCount; i++)
        {
            VhdxMetadataTableEntry entry = table.GetEntry(tableBytes, i);
            int known = KnownItem(entry.ItemId);
            if (known >= 0)
            {
                if (present[known])
                {
                    return (Fail(HeaderError.Inconsistent, InvalidArgument), default);
                }

                present[known] = true;
                items[known] = entry;
            }
            else if (entry.IsRequired)
            {
                return (Fail(HeaderError.UnsupportedFeature, NotSupported), default);
            }
        }

        for (int i = 0; i < ParentLocatorIndex; i++)
        {
            if (!present[i])
            {
                return (Fail(HeaderError.UnsupportedFeature, NotSupported), default);
            }
        }

        ulong itemBase = metadataRegion.FileOffset;
        byte[]? parameters = await ReadItemAsync(context, itemBase, items[FileParametersIndex], 2 * sizeof(uint), cancellationToken).ConfigureAwait(false);
        byte[]? sizeBytes = await ReadItemAsync(context, itemBase, items[VirtualDiskSizeIndex], sizeof(ulong), cancellationToken).ConfigureAwait(false);
        byte[]? logicalBytes = await ReadItemAsync(context, itemBase, items[LogicalSectorSizeIndex], sizeof(uint), cancellationToken).ConfigureAwait(false);
        if (parameters is null || sizeBytes is null || logicalBytes is null)
        {
            return (Fail(HeaderError.InvalidOffset, InvalidArgument), default);
        }

        uint parameterBits = BinaryPrimitives.ReadUInt32LittleEndian(parameters.AsSpan(sizeof(uint)));
        var metadata = new Metadata(
            BinaryPrimitives.ReadUInt32LittleEndian(parameters),
            (parameterBits & FileParametersHasParent) != 0,
            BinaryPrimitives.ReadUInt64LittleEndian(sizeBytes),
            BinaryPrimitives.ReadUInt32LittleEndian(logicalBytes));
        if (metadata.HasParent)
        {
            if (!present[ParentLocatorIndex])
            {
                return (Fail(HeaderError.Inconsistent, InvalidArgument), default);
            }

            string? locatorError = await ReadParentLocatorAsync(context, itemBase, items[ParentLocatorIndex], references, cancellationToken).ConfigureAwait(false);
            if (locatorError is not null)
            {
                return (Fail(HeaderError.InvalidExtension, locatorError), default);
            }
        }

        return (null, metadata);
    }

    /// <summary>
    /// The geometry checks of vhdx_parse_metadata and vhdx_calc_bat_entries, in qemu's 32-bit arithmetic: the block
    /// size, the one logical sector size qemu 7.2 supports, powers of two, the disk size, and a BAT region large
    /// enough for the entries the geometry needs.
    /// </summary>
    private static LayerFacts? CheckGeometry(in Metadata metadata, VhdxRegionTableEntry batRegion, out ulong totalSectors, out ulong chunkRatio, out uint batEntries)
    {
        totalSectors = 0;
        chunkRatio = 0;
        batEntries = 0;
        uint blockSize = metadata.BlockSize;
        uint logicalSectorSize = metadata.LogicalSectorSize;
        ulong virtualDiskSize = metadata.VirtualDiskSize;
        if (blockSize is < MinBlockSize or > MaxBlockSize)
        {
            return Fail(HeaderError.InvalidSize, InvalidArgument);
        }

        // [MS-VHDX] allows 512 and 4096; qemu 7.2 supports only 512 (verified: 4096 gives "Operation not supported").
        if (logicalSectorSize != SupportedLogicalSectorSize)
        {
            return Fail(HeaderError.UnsupportedFeature, NotSupported);
        }

        uint sectorsPerBlock = blockSize / logicalSectorSize;
        chunkRatio = MaxSectorsPerBlock * logicalSectorSize / blockSize;
        if (!BitOperations.IsPow2(sectorsPerBlock) || !BitOperations.IsPow2(chunkRatio) || !BitOperations.IsPow2(blockSize))
        {
            return Fail(HeaderError.InvalidSize, InvalidArgument);
        }

        totalSectors = virtualDiskSize / SupportedLogicalSectorSize;
        if (totalSectors > long.MaxValue / 512)
        {
            return Fail(HeaderError.InvalidSize, "File too large");
        }

        uint dataBlocks = (uint)((virtualDiskSize / blockSize) + (virtualDiskSize % blockSize != 0 ? 1UL : 0));
        int chunkRatioBits = BitOperations.Log2(chunkRatio);
        batEntries = metadata.HasParent
            ? (uint)(((dataBlocks + chunkRatio - 1) / chunkRatio) * (chunkRatio + 1))
            : unchecked(dataBlocks + ((dataBlocks - 1) >> chunkRatioBits));
        if (batEntries > batRegion.Length / sizeof(ulong))
        {
            return Fail(HeaderError.InvalidSize, InvalidArgument);
        }

        return null;
    }

    /// <summary>"loge", the signature of a log entry header.</summary>
    private const uint LogEntrySignature = 0x65676F6C;

    private const uint SupportedLogicalSectorSize = 512;

    private const int FileParametersIndex = 0;
    private const int VirtualDiskSizeIndex = 1;
    private const int Page83Index = 2;
    private const int LogicalSectorSizeIndex = 3;
    private const int PhysicalSectorSizeIndex = 4;
    private const int ParentLocatorIndex = 5;
    private const int KnownItemCount = 6;

    private static int KnownItem(Guid id) =>
        id == FileParametersItem ? FileParametersIndex
        : id == VirtualDiskSizeItem ? VirtualDiskSizeIndex
        : id == Page83Item ? Page83Index
        : id == LogicalSectorSizeItem ? LogicalSectorSizeIndex
        : id == PhysicalSectorSizeItem ? PhysicalSectorSizeIndex
        : id == ParentLocatorItem ? ParentLocatorIndex
        : -1;

    private static LayerFacts Fail(HeaderError error, string message) => LayerFacts.Failed(error, message);

    private static void Register(List<(ulong Start, ulong End)> regions, ulong start, ulong length) =>
        regions.Add((start, start + length < start ? ulong.MaxValue : start + length));

    /// <summary>vhdx_region_check: a region may not overlap any registered one.</summary>
    private static bool Overlaps(List<(ulong Start, ulong End)> regions, ulong start, ulong length)
    {
        ulong end = start + length < start ? ulong.MaxValue : start + length;
        foreach ((ulong Start, ulong End) region in regions)
        {
            if (!(start >= region.End || end <= region.Start))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>qemu reads items at region offset + item offset; like qemu, past the end of the file reads zeros.</summary>
    private static ValueTask<byte[]?> ReadItemAsync(LayerReadContext context, ulong regionOffset, VhdxMetadataTableEntry item, int length, CancellationToken cancellationToken) =>
        regionOffset > ulong.MaxValue - item.Offset
            ? new ValueTask<byte[]?>((byte[]?)null)
            : HeaderReads.ReadPaddedAsync(context, regionOffset + item.Offset, length, cancellationToken);

    /// <summary>
    /// The parent's locations: every path key, those this machine can open (no backslashes) first, then in the
    /// order [MS-VHDX] tries them. The locator must lie within the file and be at most 1 MiB.
    /// </summary>
    private static async ValueTask<string?> ReadParentLocatorAsync(
        LayerReadContext context, ulong regionOffset, VhdxMetadataTableEntry item, List<StoredReference> references, CancellationToken cancellationToken)
    {
        const string Invalid = "Invalid VHDX parent locator";
        if (item.Length > MaxMetadataItemLength || regionOffset > ulong.MaxValue - item.Offset
            || regionOffset + item.Offset > (ulong)context.Source.Length
            || item.Length > (ulong)context.Source.Length - (regionOffset + item.Offset))
        {
            return Invalid;
        }

        ReadOnlyMemory<byte> data = await context.ReadAsync((long)(regionOffset + item.Offset), (int)item.Length, cancellationToken).ConfigureAwait(false);
        if (VhdxParentLocator.Read(data.Span, out VhdxParentLocator locator) != HeaderError.None || !locator.IsVhdxLocator)
        {
            return Invalid;
        }

        var local = new List<StoredReference>();
        var other = new List<StoredReference>();
        foreach (string key in (ReadOnlySpan<string>)[VhdxParentLocator.RelativePathKey, VhdxParentLocator.VolumePathKey, VhdxParentLocator.AbsoluteWin32PathKey])
        {
            string? problem = locator.TryGetValue(data.Span, key, out string? path);
            if (problem is not null)
            {
                // A parent path is opened by the resolver: a NUL or invalid UTF-16 would make it name another file.
                throw new ImageFormatException(HeaderError.InvalidText, $"the VHDX parent locator's {key} {problem}");
            }

            if (string.IsNullOrEmpty(path))
            {
                continue;
            }

            var reference = new StoredReference(path, ReferenceRole.BackingFile, "vhdx");
            ReferenceKind kind = NameKinds.Classify(path);
            (kind is ReferenceKind.RelativePath or ReferenceKind.AbsolutePath ? local : other).Add(reference);
        }

        if (local.Count + other.Count == 0)
        {
            return "VHDX parent locator names no parent path";
        }

        references.AddRange(local);
        references.AddRange(other);
        return null;
    }

    /// <summary>
    /// vhdx_check_bat_entries: every fully present payload block must start inside the file, end inside it (the
    /// last block may be partial) and not overlap a region. Only the part of the BAT inside the file is read:
    /// past the end it reads as zeros, which are "not present".
    /// </summary>
    private static async ValueTask<string?> CheckBatAsync(
        LayerReadContext context, ulong batOffset, uint batEntries, uint blockSize, ulong chunkRatio, long diskBytes, long fileLength,
        List<(ulong Start, ulong End)> regions, CancellationToken cancellationToken)
    {
        const int ChunkEntries = 65536;
        ulong payloadBlocks = chunkRatio;
        ulong entriesInFile = batOffset >= (ulong)fileLength ? 0 : Math.Min(batEntries, ((ulong)fileLength - batOffset) / sizeof(ulong));
        for (ulong first = 0; first < entriesInFile; first += ChunkEntries)
        {
            int count = (int)Math.Min(ChunkEntries, entriesInFile - first);
            byte[]? bytes = await HeaderReads.ReadPaddedAsync(context, batOffset + (first * sizeof(ulong)), count * sizeof(ulong), cancellationToken).ConfigureAwait(false);
            if (bytes is null)
            {
                return InvalidArgument;
            }

            for (int i = 0; i < count; i++)
            {
                ulong index = first + (ulong)i;
                ulong entry = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(i * sizeof(ulong)));
                if ((entry & BatStateMask) != PayloadBlockFullyPresent)
                {
                    continue;
                }

                ulong offset = entry & BatFileOffsetMask;
                long remaining = diskBytes - (long)Math.Min(index * blockSize, (ulong)long.MaxValue);
                ulong blockLength = (ulong)Math.Max(0, Math.Min(blockSize, remaining));
                if (offset > (ulong)long.MaxValue - blockSize || offset >= (ulong)fileLength || offset + blockLength > (ulong)fileLength)
                {
                    return $"VHDX BAT entry {index} points after end of file ({fileLength}). Image has probably been truncated.";
                }

                if (payloadBlocks-- != 0)
                {
                    if (Overlaps(regions, offset, blockSize))
                    {
                        return InvalidArgument;
                    }
                }
                else
                {
                    payloadBlocks = chunkRatio;
                }
            }
        }

        return null;
    }
}
