using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using static BackingChain.Formats.Vpc.VhdLayout;

namespace BackingChain.Formats.Vpc;

/// <summary>
/// Reads a VHD layer as qemu 7.2's <c>vpc</c> driver opens it, and, unlike qemu, also the parent of a
/// differencing disk (its locators and name), so the resolver can follow and judge it.
/// </summary>
internal sealed class VpcFormatReader : IImageFormatReader
{
    public static VpcFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Vpc;

    public string QemuName => "vpc";

    public string? LibvirtName => "vpc";

    public bool QemuOpensBacking => false;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = CreateSignatures();

    /// <summary>vpc_probe: "conectix" at offset 0 only, so a fixed disk (footer at the end only) probes as raw.</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName) =>
        head.Length >= sizeof(ulong) && BinaryPrimitives.ReadUInt64BigEndian(head) == FooterCookie ? 100 : 0;

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        long fileLength = context.Source.Length;
        long protocolLength = HeaderReads.RoundedLength(fileLength);

        // qemu reads sector 0; without "conectix" there it takes the last sector and treats the disk as fixed,
        // whatever its type field says. With "conectix" at 0 it always goes the dynamic way.
        byte[]? footerBytes = await HeaderReads.ReadPaddedAsync(context, 0, FooterSize, cancellationToken).ConfigureAwait(false);
        bool dynamicLayout = footerBytes is not null && BinaryPrimitives.ReadUInt64BigEndian(footerBytes) == FooterCookie;
        if (!dynamicLayout)
        {
            if (protocolLength < FooterSize)
            {
                return LayerFacts.Failed(HeaderError.Truncated, VhdFooter.Describe(HeaderError.Truncated));
            }

            footerBytes = await HeaderReads.ReadPaddedAsync(context, (ulong)(protocolLength - FooterSize), FooterSize, cancellationToken).ConfigureAwait(false);
        }

        HeaderError error = VhdFooter.Read(footerBytes, out VhdFooter footer);
        if (error != HeaderError.None)
        {
            return LayerFacts.Failed(error, VhdFooter.Describe(error));
        }

        int? clusterSize = null;
        var parents = new List<StoredReference>();
        if (dynamicLayout)
        {
            byte[]? dynamicBytes = await HeaderReads.ReadPaddedAsync(context, footer.DataOffset, DynamicHeaderSize, cancellationToken).ConfigureAwait(false);
            if (dynamicBytes is null)
            {
                return LayerFacts.Failed(HeaderError.InvalidOffset, "Error reading dynamic VHD header");
            }

            error = VhdDynamicHeader.Read(dynamicBytes, out VhdDynamicHeader dynamic);
            if (error != HeaderError.None && error != HeaderError.InvalidSize)
            {
                return LayerFacts.Failed(error, VhdDynamicHeader.Describe(error, dynamicBytes));
            }

            uint blockSize = BinaryPrimitives.ReadUInt32BigEndian(dynamicBytes.AsSpan(BlockSizeOffset));
            if (blockSize < SectorSize || (blockSize & (blockSize - 1)) != 0)
            {
                return LayerFacts.Failed(HeaderError.InvalidSize, $"Invalid block size {blockSize}");
            }

            // qemu's order: "Too many blocks", "Page table too small", then the entry cap.
            ulong diskBytes = (ulong)footer.TotalSectors * SectorSize;
            if (diskBytes / blockSize > uint.MaxValue)
            {
                return LayerFacts.Failed(HeaderError.InvalidSize, "Too many blocks");
            }

            uint entries = BinaryPrimitives.ReadUInt32BigEndian(dynamicBytes.AsSpan(MaxTableEntriesOffset));
            if ((ulong)entries * blockSize < diskBytes)
            {
                return LayerFacts.Failed(HeaderError.InvalidSize, "Page table too small");
            }

            if (error != HeaderError.None)
            {
                return LayerFacts.Failed(error, VhdDynamicHeader.Describe(error, dynamicBytes));
            }

            string? batError = await CheckBatAsync(context, dynamic, protocolLength, cancellationToken).ConfigureAwait(false);
            if (batError is not null)
            {
                return LayerFacts.Failed(HeaderError.InvalidOffset, batError);
            }

            // vpc_get_info reports the block size unless the footer's type says fixed.
            if (footer.DiskType != VhdDiskType.Fixed)
            {
                clusterSize = (int)Math.Min(dynamic.BlockSize, int.MaxValue);
            }

            if (footer.DiskType == VhdDiskType.Differencing)
            {
                await ReadParentAsync(context, dynamicBytes, parents, cancellationToken).ConfigureAwait(false);
            }
        }

        var result = new LayerFacts(context)
        {
            VirtualSize = footer.VirtualSize,
            ClusterSize = clusterSize,
            DirtyFlag = false,
        };
        result.References.AddRange(parents);
        return result;
    }

    /// <summary>
    /// qemu reads the whole BAT and refuses an image whose BAT or any allocated block (bitmap + data) ends past
    /// the end of the file ("The image has been truncated"). The BAT is read in bounded chunks: it must lie
    /// within the file, so its size is bounded by the file's.
    /// </summary>
    private static async ValueTask<string?> CheckBatAsync(LayerReadContext context, VhdDynamicHeader dynamic, long protocolLength, CancellationToken cancellationToken)
    {
        const string Truncated = "block-vpc: free_data_block_offset points after the end of file. The image has been truncated.";
        ulong tableBytes = (ulong)dynamic.MaxTableEntries * BatEntrySize;
        if (dynamic.TableOffset > (ulong)long.MaxValue - tableBytes)
        {
            return "Error reading pagetable";
        }

        ulong end = (dynamic.TableOffset + tableBytes + SectorSize - 1) & ~(ulong)(SectorSize - 1);
        if (end > (ulong)protocolLength)
        {
            return Truncated;
        }

        ulong bitmapSize = (((ulong)dynamic.BlockSize / (8 * SectorSize)) + SectorSize - 1) & ~(ulong)(SectorSize - 1);
        const int ChunkEntries = 16384;
        for (uint first = 0; first < dynamic.MaxTableEntries; first += ChunkEntries)
        {
            int count = (int)Math.Min(ChunkEntries, dynamic.MaxTableEntries - first);
            byte[]? bytes = await HeaderReads.ReadPaddedAsync(context, dynamic.TableOffset + ((ulong)first * BatEntrySize), count * BatEntrySize, cancellationToken).ConfigureAwait(false);
            if (bytes is null)
            {
                return "Error reading pagetable";
            }

            for (int i = 0; i < count; i++)
            {
                uint sector = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(i * BatEntrySize));
                if (sector != UnallocatedBlock && ((ulong)sector * SectorSize) + bitmapSize + dynamic.BlockSize > (ulong)protocolLength)
                {
                    return Truncated;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// The parent of a differencing disk: every locator with a decodable path, then the parent's name from the
    /// dynamic header. Names this machine can open (POSIX paths) come first, so the resolver follows one of them;
    /// Windows paths stay listed (and are classified as such). Locators whose data lies outside the file or is
    /// too long are skipped, as qemu ignores all of them.
    /// </summary>
    private static async ValueTask ReadParentAsync(LayerReadContext context, byte[] dynamicBytes, List<StoredReference> references, CancellationToken cancellationToken)
    {
        var local = new List<StoredReference>();
        var other = new List<StoredReference>();
        for (int i = 0; i < ParentLocatorCount; i++)
        {
            VhdParentLocator locator = VhdDynamicHeader.GetParentLocator(dynamicBytes, i);
            if (!locator.HasPath || locator.PlatformDataLength == 0 || locator.PlatformDataLength > MaxLocatorDataLength
                || locator.PlatformDataOffset > (ulong)context.Source.Length
                || locator.PlatformDataLength > (ulong)context.Source.Length - locator.PlatformDataOffset)
            {
                continue;
            }

            ReadOnlyMemory<byte> data = await context.ReadAsync((long)locator.PlatformDataOffset, (int)locator.PlatformDataLength, cancellationToken).ConfigureAwait(false);
            string? problem = locator.TryDecodePath(data.Span, out string? path);
            if (problem is not null)
            {
                // The parent is a file the resolver opens: a name that decodes to something else than what is
                // stored (or that a C reader would cut at a NUL) is refused, not skipped.
                throw new ImageFormatException(HeaderError.InvalidText, $"the parent locator path {problem}");
            }

            if (path is not null)
            {
                Add(path);
            }
        }

        string? nameProblem = VhdDynamicHeader.TryGetParentUnicodeName(dynamicBytes, out string? name);
        if (nameProblem is not null)
        {
            throw new ImageFormatException(HeaderError.InvalidText, $"the parent name {nameProblem}");
        }

        if (name is not null)
        {
            Add(name);
        }

        references.AddRange(local);
        references.AddRange(other);

        void Add(string path)
        {
            foreach (StoredReference seen in local)
            {
                if (seen.Name == path)
                {
                    return;
                }
            }

            foreach (StoredReference seen in other)
            {
                if (seen.Name == path)
                {
                    return;
                }
            }

            // A VHD's parent is a VHD: the format is implied, like a VMDK parent's.
            var reference = new StoredReference(path, ReferenceRole.BackingFile, "vpc");
            ReferenceKind kind = NameKinds.Classify(path);
            (kind is ReferenceKind.RelativePath or ReferenceKind.AbsolutePath ? local : other).Add(reference);
        }
    }

    /// <summary>The footer copy at the start that qemu probes, and the footer at the end that a fixed disk has alone.</summary>
    private static ImmutableArray<SignatureRule> CreateSignatures() =>
    [
        SignatureRule.QemuProbe("vpc"),
        SignatureRule.Unseen(
            SignatureLocation.Tail,
            "VHD footer at the end of the file (a fixed VHD; qemu probes it as raw)",
            static (in SignatureInput input) => input.Tail.Length >= FooterSize && VhdFooter.TryParse(input.Tail[^FooterSize..], out _, out _)),
    ];
}
