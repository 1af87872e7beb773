using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using static BackingChain.Formats.Vmdk.VmdkLayout;

namespace BackingChain.Formats.Vmdk;

/// <summary>
/// Reads a VMDK layer as qemu 7.2's <c>vmdk_open</c> does: a sparse file ("KDMV"/"COWD") is its own single
/// extent with the descriptor at 0x200; anything else is a descriptor file whose extents are opened through
/// the resolver's trust gate (<see cref="LayerReadContext.OpenReferenceAsync"/>), never directly.
/// </summary>
internal sealed class VmdkFormatReader : IImageFormatReader
{
    public static VmdkFormatReader Instance { get; } = new();

    public ImageFormat Format => ImageFormat.Vmdk;

    public string QemuName => "vmdk";

    public string? LibvirtName => "vmdk";

    public bool QemuOpensBacking => true;

    public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

    public bool InfoComesFromProtocol => false;

    public ImmutableArray<SignatureRule> Signatures { get; } = CreateSignatures();

    /// <summary>vmdk_probe: a sparse magic, or a text whose first line that is not a comment or blank is <c>version=1|2|3</c>.</summary>
    public int Probe(ReadOnlySpan<byte> head, string? fileName)
    {
        if (head.Length < sizeof(uint))
        {
            return 0;
        }

        uint magic = BinaryPrimitives.ReadUInt32BigEndian(head);
        if (magic is Vmdk4Magic or Vmdk3Magic)
        {
            return 100;
        }

        int p = 0;
        while (p < head.Length)
        {
            if (head[p] == (byte)'#')
            {
                // A comment line: skip through its newline.
                int newline = head[p..].IndexOf((byte)'\n');
                p = newline < 0 ? head.Length + 1 : p + newline + 1;
                continue;
            }

            if (head[p] == (byte)' ')
            {
                // Only lines of spaces (optionally ending in \r) may come before "version=": not empty lines.
                while (p < head.Length && head[p] == (byte)' ')
                {
                    p++;
                }

                if (p < head.Length && head[p] == (byte)'\r')
                {
                    p++;
                }

                if (p >= head.Length || head[p] != (byte)'\n')
                {
                    return 0;
                }

                p++;
                continue;
            }

            ReadOnlySpan<byte> rest = head[p..];
            return IsVersionLine(rest, "\n"u8) || IsVersionLine(rest, "\r\n"u8) ? 100 : 0;
        }

        return 0;
    }

    public async ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
    {
        IImageSource source = context.Source;

        // "File is too small, not a valid image"
        if (source.Length < sizeof(uint) || context.Head.Length < sizeof(uint))
        {
            return LayerFacts.Failed(HeaderError.Truncated, "File is too small, not a valid image");
        }

        uint magic = BinaryPrimitives.ReadUInt32BigEndian(context.Head.Span);
        var extents = new List<VmdkExtentInfo>();
        var references = new List<StoredReference>();
        string createType;
        long additionalAllocated = 0;
        if (magic is Vmdk4Magic or Vmdk3Magic)
        {
            SparseResult sparse = await ReadSparseAsync(source, magic, cancellationToken).ConfigureAwait(false);
            if (sparse.Error != HeaderError.None)
            {
                return LayerFacts.Failed(sparse.Error, sparse.Message!);
            }

            if (sparse.DescriptorOffset is ulong descriptorSector)
            {
                // A descriptor container: the text at desc_offset is a descriptor file (identity still at 0x200).
                ulong offset = descriptorSector << SectorShift;
                if (descriptorSector > long.MaxValue >> SectorShift)
                {
                    return LayerFacts.Failed(HeaderError.InvalidOffset, "Could not read from file");
                }

                ReadOnlyMemory<byte> body = await ReadZeroPaddedAsync(source, (long)offset, (int)Math.Min(source.Length, MaxDescriptorLength), cancellationToken).ConfigureAwait(false);
                ReadOnlyMemory<byte> identity = await ReadZeroPaddedAsync(source, EmbeddedDescriptorOffset, DescriptorWindowLength, cancellationToken).ConfigureAwait(false);
                DescriptorResult result = await ReadDescriptorFileAsync(context, body, identity, extents, references, cancellationToken).ConfigureAwait(false);
                if (result.Error != HeaderError.None)
                {
                    return LayerFacts.Failed(result.Error, result.Message!);
                }

                createType = result.CreateType!;
                additionalAllocated = result.AllocatedSize;
            }
            else
            {
                // The file is its own single extent; qemu names the create type itself and shows no extent type.
                extents.Add(new VmdkExtentInfo
                {
                    FileName = source.Name,
                    Format = "",
                    VirtualSize = sparse.CapacitySectors * SectorSize,
                    ClusterSize = sparse.GrainSectors * SectorSize,
                    Compressed = sparse.Compressed,
                });
                createType = sparse.Compressed ? "streamOptimized" : magic == Vmdk4Magic ? "monolithicSparse" : "";
            }

            ReadOnlyMemory<byte> window = await ReadZeroPaddedAsync(source, EmbeddedDescriptorOffset, DescriptorWindowLength, cancellationToken).ConfigureAwait(false);
            LayerFacts sparseFacts = Finish(context, window, createType, extents, references, additionalAllocated);
            if (sparseFacts.Error == HeaderError.None && magic == Vmdk4Magic && sparse.DescriptorOffset is null)
            {
                await NoteEmbeddedDescriptorProblemsAsync(context, window, (ulong)sparse.CapacitySectors, sparseFacts.StructureProblems, cancellationToken).ConfigureAwait(false);
            }

            return sparseFacts;
        }
        else
        {
            // A descriptor file: qemu reads at most 1 MiB - 1 of it.
            ReadOnlyMemory<byte> body = await context.ReadAsync(0, (int)Math.Min(source.Length, MaxDescriptorLength), cancellationToken).ConfigureAwait(false);

            // qemu stops at a NUL and ignores what follows; a text file has none, so one is a text that means
            // one thing to qemu and another to anything reading past it.
            if (body.Span.IndexOf((byte)0) >= 0)
            {
                return LayerFacts.Failed(HeaderError.InvalidText, "Invalid VMDK descriptor: the descriptor file contains a NUL byte");
            }

            DescriptorResult result = await ReadDescriptorFileAsync(context, body, body, extents, references, cancellationToken).ConfigureAwait(false);
            if (result.Error != HeaderError.None)
            {
                return LayerFacts.Failed(result.Error, result.Message!);
            }

            return Finish(context, body, result.CreateType!, extents, references, result.AllocatedSize);
        }
    }

    /// <summary>
    /// Checks the descriptor embedded in a monolithic sparse file: the window qemu reads at 0x200 and, when the header
    /// puts the descriptor elsewhere or makes it longer, the area the header names (at most 1 MiB), as another
    /// reader of the file would take it.
    /// </summary>
    private static async ValueTask NoteEmbeddedDescriptorProblemsAsync(LayerReadContext context, ReadOnlyMemory<byte> window, ulong capacitySectors, List<string> problems, CancellationToken cancellationToken)
    {
        VmdkEmbeddedDescriptor.NoteProblems(window.Span, capacitySectors, problems);
        if (VmdkSparseHeader.Read(context.Head.Span, out VmdkSparseHeader header) != HeaderError.None
            || header.DescriptorOffset == 0 || header.DescriptorSize == 0
            || (header.DescriptorOffset == EmbeddedDescriptorOffset / SectorSize && header.DescriptorSize <= DescriptorWindowLength / SectorSize)
            || header.DescriptorOffset > long.MaxValue >> SectorShift || header.DescriptorOffset << SectorShift >= (ulong)context.Source.Length)
        {
            return;
        }

        int length = (int)Math.Min(Math.Min(header.DescriptorSize, MaxDescriptorLength) << SectorShift, MaxDescriptorLength);
        ReadOnlyMemory<byte> area = await ReadZeroPaddedAsync(context.Source, (long)(header.DescriptorOffset << SectorShift), length, cancellationToken).ConfigureAwait(false);
        var more = new List<string>();
        VmdkEmbeddedDescriptor.NoteProblems(area.Span, capacitySectors, more);
        foreach (string problem in more)
        {
            if (!problems.Contains(problem))
            {
                problems.Add(problem);
            }
        }
    }

    /// <summary>Reads CID, parentCID and the parent hint, and assembles the facts qemu-img info shows.</summary>
    private static LayerFacts Finish(LayerReadContext context, ReadOnlyMemory<byte> window, string createType, List<VmdkExtentInfo> extents, List<StoredReference> references, long additionalAllocated)
    {
        HeaderError error = VmdkDescriptor.ReadIdentity(window.Span, out uint cid, out uint parentCid, out Range hint);
        if (error != HeaderError.None)
        {
            return LayerFacts.Failed(error, error == HeaderError.InvalidSize ? "parentFileNameHint is too long" : "Invalid argument (the descriptor's CID, parentCID or parentFileNameHint cannot be read)");
        }

        long virtualSize = 0;
        foreach (VmdkExtentInfo extent in extents)
        {
            if (extent.VirtualSize > long.MaxValue - virtualSize)
            {
                return LayerFacts.Failed(HeaderError.InvalidSize, "The extents add up to more than 2^63 bytes");
            }

            virtualSize += extent.VirtualSize;
        }

        // vmdk_co_get_info: only when every extent is like the first (flat, compressed, grain size) does qemu
        // report the info, and with it the dirty flag (always false) and the first extent's grain size.
        bool uniform = true;
        VmdkExtentInfo first = extents[0];
        for (int i = 1; i < extents.Count; i++)
        {
            VmdkExtentInfo other = extents[i];
            bool sameKind = (first.ClusterSize is null) == (other.ClusterSize is null)
                && first.Compressed == other.Compressed
                && (first.ClusterSize is null || first.ClusterSize == other.ClusterSize);
            uniform &= sameKind;
        }

        var facts = new LayerFacts(context)
        {
            VirtualSize = virtualSize,
            ClusterSize = uniform && first.ClusterSize is long grain && grain > 0 ? (int)grain : null,
            DirtyFlag = uniform ? false : null,
            FormatSpecific = new VmdkFormatInfo
            {
                CreateType = createType,
                Cid = cid,
                ParentCid = parentCid,
                Extents = [.. extents],
            },
            AdditionalAllocatedSize = additionalAllocated,
        };

        // The parent comes first: it is the layer's backing reference. qemu forces its format to vmdk.
        ReadOnlySpan<byte> hintBytes = window.Span[hint];
        if (!hintBytes.IsEmpty)
        {
            facts.References.Add(new StoredReference(CString.ToName(hintBytes, "parentFileNameHint"), ReferenceRole.BackingFile, "vmdk"));
        }

        facts.References.AddRange(references);
        return facts;
    }

    /// <summary>vmdk_open_desc_file and vmdk_parse_extents: the create type, then every extent, opened through the gate.</summary>
    private static async ValueTask<DescriptorResult> ReadDescriptorFileAsync(
        LayerReadContext context, ReadOnlyMemory<byte> body, ReadOnlyMemory<byte> identity,
        List<VmdkExtentInfo> extents, List<StoredReference> references, CancellationToken cancellationToken)
    {
        HeaderError error = VmdkDescriptor.Read(body.Span, identity.Span, out VmdkDescriptor descriptor, out Range errorLine);
        if (error != HeaderError.None)
        {
            return new DescriptorResult(error, VmdkDescriptor.Describe(error, body.Span, errorLine), null, 0);
        }

        string createType = descriptor.GetCreateType(body.Span);
        List<(VmdkExtentLine Line, string Name)> lines = CollectExtents(body.Span);
        // Keyed by the name with "." segments and repeated slashes removed, which name the same file whatever
        // the file system holds: one file under many spellings is opened (and held) once, in linear time.
        var opened = new Dictionary<string, IImageSource?>(StringComparer.Ordinal);
        long allocated = 0;
        string directory = DirectoryPrefix(context.Source.Name);
        foreach ((VmdkExtentLine line, string name) in lines)
        {
            string path = name.StartsWith('/') ? name : directory + name;
            var reference = new StoredReference(name, ReferenceRole.Extent, line.IsFlat ? "raw" : "vmdk");
            string key = LexicalKey(name);
            if (!opened.TryGetValue(key, out IImageSource? extentSource))
            {
                extentSource = await context.OpenReferenceAsync(reference, cancellationToken).ConfigureAwait(false);
                opened[key] = extentSource;
                references.Add(reference);
            }

            if (extentSource is null)
            {
                // The gate has recorded why (missing, refused or not a local name); qemu fails the open too.
                return new DescriptorResult(HeaderError.Inconsistent, $"Could not open '{path}': missing, or not allowed by the trust policy", null, 0);
            }

            allocated += extentSource.AllocatedSize ?? 0;
            if (line.IsFlat)
            {
                if (line.Sectors > long.MaxValue / SectorSize)
                {
                    return new DescriptorResult(HeaderError.InvalidSize, $"Invalid extent line: the size of '{name}' is out of range", null, 0);
                }

                // The extent's bytes are [offset, offset + size) of its file: both in sectors, both must fit in 2^63.
                if (line.FlatOffset > long.MaxValue / SectorSize || line.Sectors * SectorSize > long.MaxValue - (line.FlatOffset * SectorSize))
                {
                    return new DescriptorResult(HeaderError.InvalidOffset, $"Invalid extent line: the offset of '{name}' is out of range", null, 0);
                }

                extents.Add(new VmdkExtentInfo { FileName = path, Format = line.TypeName, VirtualSize = line.Sectors * SectorSize });
                continue;
            }

            SparseResult sparse = line.Type == VmdkExtentType.SeSparse
                ? await ReadSeSparseAsync(extentSource, cancellationToken).ConfigureAwait(false)
                : await ReadSparseExtentAsync(extentSource, cancellationToken).ConfigureAwait(false);
            if (sparse.Error != HeaderError.None)
            {
                return new DescriptorResult(sparse.Error, $"Could not open '{path}': {sparse.Message}", null, 0);
            }

            extents.Add(new VmdkExtentInfo
            {
                FileName = path,
                Format = line.TypeName,
                VirtualSize = sparse.CapacitySectors * SectorSize,
                ClusterSize = sparse.GrainSectors * SectorSize,
                Compressed = sparse.Compressed,
            });

            // A compressed extent makes qemu call the whole image stream-optimized.
            if (sparse.Compressed)
            {
                createType = "streamOptimized";
            }
        }

        return new DescriptorResult(HeaderError.None, null, createType, allocated);
    }

    private static List<(VmdkExtentLine Line, string Name)> CollectExtents(ReadOnlySpan<byte> body)
    {
        var lines = new List<(VmdkExtentLine, string)>();
        foreach (VmdkExtentLine line in VmdkDescriptor.EnumerateExtents(body))
        {
            lines.Add((line, CString.ToName(body[line.FileNameRange], "extent file name")));
        }

        return lines;
    }

    /// <summary>An extent file named SPARSE or VMFSSPARSE: "KDMV" or "COWD", nothing else ("Image not in VMDK format").</summary>
    private static async ValueTask<SparseResult> ReadSparseExtentAsync(IImageSource source, CancellationToken cancellationToken)
    {
        if (source.Length < sizeof(uint))
        {
            return SparseResult.Failed(HeaderError.Truncated, "File is too small, not a valid image");
        }

        ReadOnlyMemory<byte> first = await ReadZeroPaddedAsync(source, 0, sizeof(uint), cancellationToken).ConfigureAwait(false);
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(first.Span);
        if (magic is not (Vmdk4Magic or Vmdk3Magic))
        {
            return SparseResult.Failed(HeaderError.BadMagic, "Image not in VMDK format");
        }

        SparseResult result = await ReadSparseAsync(source, magic, cancellationToken).ConfigureAwait(false);
        if (result.Error == HeaderError.None && result.DescriptorOffset is not null)
        {
            // qemu would parse this nested descriptor as part of the outer one (and could recurse); refused here.
            return SparseResult.Failed(HeaderError.UnsupportedFeature, "a sparse extent that is itself a descriptor container is not supported");
        }

        return result;
    }

    /// <summary>vmdk_open_vmdk4 / vmdk_open_vmfs_sparse on one file.</summary>
    private static async ValueTask<SparseResult> ReadSparseAsync(IImageSource source, uint magic, CancellationToken cancellationToken)
    {
        ReadOnlyMemory<byte> sector = await ReadZeroPaddedAsync(source, 0, SectorSize, cancellationToken).ConfigureAwait(false);
        long fileSectors = (source.Length + SectorSize - 1) / SectorSize;
        if (magic == Vmdk3Magic)
        {
            HeaderError cowdError = VmdkCowdHeader.Read(sector.Span, out VmdkCowdHeader cowd);
            return cowdError != HeaderError.None
                ? SparseResult.Failed(cowdError, VmdkSparseHeader.Describe(cowdError))
                : new SparseResult(HeaderError.None, null, cowd.DiskSectors, cowd.Granularity, false, null);
        }

        HeaderError error = VmdkSparseHeader.Read(sector.Span, out VmdkSparseHeader header);
        if (error != HeaderError.None)
        {
            return SparseResult.Failed(error, VmdkSparseHeader.Describe(error));
        }

        if (header.IsDescriptorContainer)
        {
            return new SparseResult(HeaderError.None, null, 0, 0, false, header.DescriptorOffset);
        }

        if (header.IsGrainDirectoryAtEnd)
        {
            // The footer: 1536 bytes ending 1024 bytes before the end (footer marker, header, end-of-stream marker).
            long footerOffset = fileSectors * SectorSize - FooterDistanceFromEnd;
            if (footerOffset < 0)
            {
                return SparseResult.Failed(HeaderError.Truncated, "Failed to read footer");
            }

            ReadOnlyMemory<byte> footer = await ReadZeroPaddedAsync(source, footerOffset, FooterLength, cancellationToken).ConfigureAwait(false);
            error = VmdkSparseHeader.ReadFooter(footer.Span, out header);
            if (error != HeaderError.None)
            {
                return SparseResult.Failed(error, VmdkSparseHeader.Describe(error));
            }
        }

        // "File truncated, expecting at least N bytes"
        if ((ulong)fileSectors < header.GrainOffset)
        {
            return SparseResult.Failed(HeaderError.Truncated, "File truncated, expecting at least " + (header.GrainOffset * SectorSize) + " bytes");
        }

        return new SparseResult(HeaderError.None, null, (long)header.Capacity, (long)header.Granularity, header.IsCompressed, null);
    }

    /// <summary>vmdk_open_se_sparse: the constant header, then the volatile header it points at.</summary>
    private static async ValueTask<SparseResult> ReadSeSparseAsync(IImageSource source, CancellationToken cancellationToken)
    {
        ReadOnlyMemory<byte> sector = await ReadZeroPaddedAsync(source, 0, SectorSize, cancellationToken).ConfigureAwait(false);
        HeaderError error = VmdkSeSparseHeader.Read(sector.Span, out VmdkSeSparseHeader header);
        if (error != HeaderError.None)
        {
            return SparseResult.Failed(error, "Invalid seSparse const header");
        }

        if (header.VolatileHeaderOffset > long.MaxValue >> SectorShift)
        {
            return SparseResult.Failed(HeaderError.InvalidOffset, "Could not read volatile header");
        }

        ReadOnlyMemory<byte> volatileHeader = await ReadZeroPaddedAsync(source, (long)header.VolatileHeaderOffset * SectorSize, SectorSize, cancellationToken).ConfigureAwait(false);
        error = VmdkSeSparseHeader.CheckVolatileHeader(volatileHeader.Span);
        return error != HeaderError.None
            ? SparseResult.Failed(error, "Invalid seSparse volatile header")
            : new SparseResult(HeaderError.None, null, (long)header.Capacity, (long)header.GrainSize, false, null);
    }

    /// <summary>A positional read that, like qemu's reads of a file, gives zeros past its end.</summary>
    private static async ValueTask<ReadOnlyMemory<byte>> ReadZeroPaddedAsync(IImageSource source, long offset, int length, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[length];
        if (offset < source.Length)
        {
            int wanted = (int)Math.Min(length, source.Length - offset);
            int total = 0;
            while (total < wanted)
            {
                int read = await source.ReadAtAsync(offset + total, buffer.AsMemory(total, wanted - total), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                total += read;
            }
        }

        return buffer;
    }

    /// <summary>A file name with "./" segments and repeated slashes dropped: the same path to any POSIX file system.</summary>
    internal static string LexicalKey(string name)
    {
        if (!name.Contains("//", StringComparison.Ordinal) && !name.Contains("./", StringComparison.Ordinal))
        {
            return name;
        }

        var key = new StringBuilder(name.Length);
        if (name.StartsWith('/'))
        {
            key.Append('/');
        }

        foreach (string segment in name.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (segment == ".")
            {
                continue;
            }

            if (key.Length > 0 && key[^1] != '/')
            {
                key.Append('/');
            }

            key.Append(segment);
        }

        // Relative stays relative ("./" is ".", never "/"); a trailing slash (a directory) is kept.
        if (key.Length == 0)
        {
            key.Append('.');
        }

        if (name.EndsWith('/') && key[^1] != '/')
        {
            key.Append('/');
        }

        return key.ToString();
    }

    /// <summary>bdrv_dirname of a plain file: its name up to and including the last '/'.</summary>
    private static string DirectoryPrefix(string name)
    {
        int slash = name.LastIndexOf('/');
        return slash < 0 ? "" : name[..(slash + 1)];
    }

    private static bool IsVersionLine(ReadOnlySpan<byte> rest, ReadOnlySpan<byte> newline)
    {
        ReadOnlySpan<byte> prefix = "version="u8;
        int length = prefix.Length + 1 + newline.Length;
        return rest.Length >= length
            && rest.StartsWith(prefix)
            && rest[prefix.Length] is (byte)'1' or (byte)'2' or (byte)'3'
            && rest.Slice(prefix.Length + 1, newline.Length).SequenceEqual(newline);
    }

    private readonly record struct SparseResult(HeaderError Error, string? Message, long CapacitySectors, long GrainSectors, bool Compressed, ulong? DescriptorOffset)
    {
        public static SparseResult Failed(HeaderError error, string message) => new(error, message, 0, 0, false, null);
    }

    private readonly record struct DescriptorResult(HeaderError Error, string? Message, string? CreateType, long AllocatedSize);

    /// <summary>qemu's magic, and a text descriptor qemu's probe misses because something precedes its version line.</summary>
    private static ImmutableArray<SignatureRule> CreateSignatures() =>
    [
        SignatureRule.QemuProbe("vmdk"),
        SignatureRule.Unseen(
            SignatureLocation.Head,
            "VMDK text descriptor that qemu's probe does not recognise (a blank line or other text before version=)",
            static (in SignatureInput input) => LooksLikeDescriptor(input.Head)),
    ];

    /// <summary>A text descriptor: "# Disk DescriptorFile" or both a version= and a createType= line near the start, in plain text.</summary>
    private static bool LooksLikeDescriptor(ReadOnlySpan<byte> head)
    {
        ReadOnlySpan<byte> text = CString.Of(head[..Math.Min(head.Length, 1024)]);

        return text.IndexOf("# Disk DescriptorFile"u8) >= 0
            || (text.IndexOf("version="u8) >= 0 && text.IndexOf("createType="u8) >= 0);
    }
}
