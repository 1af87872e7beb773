using System;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Fuzz;
using BackingChain.Sources;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Tests.Streaming;
using BackingChain.Trust;
using BackingChain.Walk;
using CsCheck;

namespace BackingChain.Tests.Properties;

/// <summary>
/// Property tests for hostile input (CsCheck shrinks any failure to a small case and prints its hex). The same checks
/// as the afl targets (tests/BackingChain.Fuzz/FuzzTargets.cs): parsers give a header, a <see cref="HeaderError"/> or
/// <see cref="ImageFormatException"/>; the resolver ends on any graph of names; the upload gate's verdict does not
/// depend on how the bytes arrive. Iteration counts keep the whole class to a few seconds; raise them with the
/// environment variable <c>CsCheck_Iter</c> or run for a time with <c>CsCheck_Time</c>.
/// </summary>
public sealed class HostileBytesProperties
{
    private const int ParserIterations = 3000;
    private const int GraphIterations = 1000;
    private const int ChunkingIterations = 400;

    private static readonly string[] FormatNames =
        ["qcow2", "qcow", "qed", "vmdk", "vpc", "vhdx", "vdi", "luks", "parallels", "bochs", "cloop", "dmg"];

    public static TheoryData<string> Formats { get; } = [.. FormatNames];

    // ---------------------------------------------------------------------------------------------------------------
    // (a) Every parser is total over bytes: a header, a HeaderError, or ImageFormatException; nothing else.

    [Theory]
    [MemberData(nameof(Formats))]
    public void Any_bytes_give_a_header_or_a_header_error(string format)
    {
        Action<byte[]> target = FuzzTargets.All[format];
        Gen<byte[]> bytes = Gen.Frequency(
            (1, Gen.Byte.Array[0, 1024]),
            (1, MagicThenNoise(format)),
            (4, Mutated(Seeds(format))));

        bytes.Sample(target, iter: ParserIterations, print: Hex);
    }

    /// <summary>A format's valid images, made by qemu-img (the benchmark fixtures) or from the specs (ImageBytes).</summary>
    internal static byte[][] Seeds(string format) => format switch
    {
        "qcow2" => [Fixture("qcow2-v3.head"), Qcow2(backing: "base.qcow2", backingFormat: "qcow2"), Qcow2(backing: null, backingFormat: null)],
        "qcow" => [Fixture("qcow1.head")],
        "qed" => [Fixture("qed.head")],
        "vmdk" => [Fixture("vmdk-sparse.head"), Fixture("vmdk-desc.head")],
        "vpc" => [Fixture("vhd-dynamic.head"), VhdDifferencing()],
        "vhdx" => [Fixture("vhdx.head"), Fixture("vhdx-header1.bin")],
        "vdi" => [Fixture("vdi.head")],
        "luks" => [Fixture("luks1.head")],
        "parallels" => [Fixture("parallels.head")],
        "bochs" => [ImageBytes.Bochs(1024 * 1024, 2, 512 * 1024), ImageBytes.Bochs(1024 * 1024, 2, 512 * 1024, version: 0x00010000)],
        "cloop" => [ImageBytes.Cloop(512, 4)],
        "dmg" => [ImageBytes.DmgWithPlist(2048), ImageBytes.DmgWithResourceFork(2048)],
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    /// <summary>The first 8 bytes of a valid image (its magic and often its version) followed by random bytes.</summary>
    private static Gen<byte[]> MagicThenNoise(string format)
    {
        byte[][] seeds = Seeds(format);
        return Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Byte.Array[0, 2048], (i, noise) =>
        {
            // DMG's magic is in its trailer: keep the last 512 bytes' start at the end instead.
            byte[] seed = seeds[i];
            int keep = Math.Min(8, seed.Length);
            byte[] result = format == "dmg" ? [.. noise, .. seed.AsSpan(seed.Length - 512, keep)] : [.. seed.AsSpan(0, keep), .. noise];
            return result;
        });
    }

    /// <summary>
    /// A valid image with one to four field-level mutations: a byte, or a 16/32/64-bit field in either byte order set to
    /// a boundary value (0, 1, max, sign bit, the file length...) or a random one, mostly inside the first 1 KiB where
    /// the headers are; or the image cut short or padded. Shrinking drops mutations and moves values toward 0.
    /// </summary>
    internal static Gen<byte[]> Mutated(byte[][] seeds)
    {
        Gen<Mutation> mutation = Gen.Select(Gen.Int[0, 7], Gen.Int[0, 1 << 20], Gen.Bool, Gen.ULong, (kind, position, nearStart, value) =>
            new Mutation(kind, position, nearStart, value));
        return Gen.Select(Gen.Int[0, seeds.Length - 1], mutation.Array[1, 4], (i, mutations) =>
        {
            byte[] image = (byte[])seeds[i].Clone();
            foreach (Mutation m in mutations)
            {
                image = m.Apply(image);
            }

            return image;
        });
    }

    internal readonly record struct Mutation(int Kind, int Position, bool NearStart, ulong Value)
    {
        private static readonly ulong[] Boundaries =
            [0, 1, 2, 7, 8, 9, 0x1FF, 0x200, 0x1000, 0x10000, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
             0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, ulong.MaxValue];

        public byte[] Apply(byte[] image)
        {
            if (Kind == 6)
            {
                return image[..(Position % (image.Length + 1))];
            }

            if (Kind == 7)
            {
                return [.. image, .. new byte[Position % 4096]];
            }

            if (image.Length == 0)
            {
                return image;
            }

            int span = NearStart ? Math.Min(image.Length, 1024) : image.Length;
            int width = Kind switch { 0 => 1, 1 or 2 => 2, 3 or 4 => 4, _ => 8 };
            if (image.Length < width)
            {
                return image;
            }

            int at = Math.Min((Position % span) & ~(width - 1), image.Length - width);
            ulong value = (Value % 3) switch
            {
                0 => Boundaries[(int)(Value / 3 % (ulong)Boundaries.Length)],
                1 => (ulong)image.Length + (Value / 3 % 17) - 8,
                _ => Value,
            };
            Span<byte> field = image.AsSpan(at, width);
            switch (Kind)
            {
                case 0: field[0] = (byte)value; break;
                case 1: BinaryPrimitives.WriteUInt16BigEndian(field, (ushort)value); break;
                case 2: BinaryPrimitives.WriteUInt16LittleEndian(field, (ushort)value); break;
                case 3: BinaryPrimitives.WriteUInt32BigEndian(field, (uint)value); break;
                case 4: BinaryPrimitives.WriteUInt32LittleEndian(field, (uint)value); break;
                default:
                    if ((Value & 1) == 0)
                    {
                        BinaryPrimitives.WriteUInt64BigEndian(field, value);
                    }
                    else
                    {
                        BinaryPrimitives.WriteUInt64LittleEndian(field, value);
                    }

                    break;
            }

            return image;
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // (b) The resolver ends on any graph of images naming each other, never throws, never visits an image twice and
    //     never walks deeper than its cap; the trust verdict is computed for whatever it returns.

    private static readonly string[] NameShapes = ["{0}", "./{0}", "/vm/{0}", "../vm/{0}", "/vm/./{0}", "//vm//{0}", "sub/../{0}"];

    [Fact]
    public void The_resolver_ends_on_any_graph_of_references()
    {
        Gen<Node> node = Gen.Select(Gen.Int[0, 9], Gen.Int[0, 7], Gen.Int[0, NameShapes.Length - 1], Gen.Int[0, 4], (kind, target, shape, format) =>
            new Node(kind, target, shape, format));
        Gen<(Node[] Nodes, int MaxDepth, bool Follow)> graphs = Gen.Select(node.Array[1, 8], Gen.Int[1, 12], Gen.Bool);

        var endings = new ConcurrentDictionary<ChainEnding, int>();
        graphs.Sample(g => endings.AddOrUpdate(CheckGraph(g.Nodes, g.MaxDepth, g.Follow), 1, (_, n) => n + 1), iter: GraphIterations, print: g =>
            $"maxDepth={g.MaxDepth} follow={g.Follow} nodes=[{string.Join(", ", g.Nodes.Select((n, i) => $"{i}:{n}"))}]");

        // The generator must keep reaching every way a walk can end, or the property would pass on trivial graphs.
        foreach (ChainEnding ending in (ChainEnding[])[ChainEnding.Complete, ChainEnding.Missing, ChainEnding.Loop, ChainEnding.TooDeep, ChainEnding.Refused])
        {
            Assert.True(endings.GetValueOrDefault(ending) > 0, $"no graph ended {ending}: {string.Join(", ", endings)}");
        }
    }

    [Fact]
    public async Task The_graph_images_are_real_chains_so_the_property_is_not_vacuous()
    {
        // img0 -> ./img1 -> /vm/img2 (no backing): complete, three layers. img0 -> img1 -> ../vm/img0: a loop.
        var straight = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["/vm/img0.qcow2"] = Qcow2("./img1.qcow2", "qcow2"),
            ["/vm/img1.qcow2"] = Qcow2("/vm/img2.qcow2", "qcow2"),
            ["/vm/img2.qcow2"] = Qcow2(null, null),
        };
        var looped = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["/vm/img0.qcow2"] = Qcow2("img1.qcow2", "qcow2"),
            ["/vm/img1.qcow2"] = Qcow2("../vm/img0.qcow2", "qcow2"),
        };

        ImageChain complete = await ResolveGraphAsync(straight);
        ImageChain loop = await ResolveGraphAsync(looped);

        Assert.Equal(ChainEnding.Complete, complete.Ending);
        Assert.Equal(3, complete.Layers.Length);
        Assert.Equal(ChainEnding.Loop, loop.Ending);
        Assert.Equal(2, loop.Layers.Length);
    }

    private static async Task<ImageChain> ResolveGraphAsync(Dictionary<string, byte[]> images)
    {
        var resolver = new ImageChainResolver(new ImageChainResolverOptions
        {
            SourceProviders = [new CanonicalPathProvider(images)],
            Policy = TrustPolicy.QemuCompatible,
        });
        using var top = new CanonicalSource("/vm/img0.qcow2", "/vm/img0.qcow2", images["/vm/img0.qcow2"]);
        return await resolver.ResolveAsync(top, ImageFormat.Qcow2);
    }

    /// <summary>
    /// One image of a graph. Kind 0-5: a qcow2 naming node <see cref="Target"/> (mod the node count) spelled by
    /// <see cref="Shape"/>; 6: a qcow2 naming a missing file; 7: a qcow2 naming a protocol or json: name; 8: a qcow2
    /// with no backing file; 9: raw bytes. <see cref="Format"/> picks the recorded backing format (none, qcow2, raw,
    /// vmdk, or a bogus one).
    /// </summary>
    internal readonly record struct Node(int Kind, int Target, int Shape, int Format)
    {
        public byte[] Build(int count)
        {
            string? backingFormat = Format switch { 0 => null, 1 => "qcow2", 2 => "raw", 3 => "vmdk", _ => "nonsense" };
            return Kind switch
            {
                <= 5 => Qcow2(string.Format(System.Globalization.CultureInfo.InvariantCulture, NameShapes[Shape], NodeName(Target % count)), backingFormat),
                6 => Qcow2("missing.qcow2", backingFormat),
                7 => Qcow2(Shape % 2 == 0 ? "nbd://127.0.0.1:10809/x" : "json:{\"file.filename\":\"/vm/img0.qcow2\"}", backingFormat),
                8 => Qcow2(null, null),
                _ => new byte[4096],
            };
        }
    }

    private static string NodeName(int i) => $"img{i}.qcow2";

    private static ChainEnding CheckGraph(Node[] nodes, int maxDepth, bool follow)
    {
        var images = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Length; i++)
        {
            images["/vm/" + NodeName(i)] = nodes[i].Build(nodes.Length);
        }

        var provider = new CanonicalPathProvider(images);
        TrustPolicy policy = follow ? TrustPolicy.QemuCompatible : new TrustPolicy { Callback = new TrustNamesUnder("/vm/") };
        var resolver = new ImageChainResolver(new ImageChainResolverOptions
        {
            SourceProviders = [provider],
            MaxDepth = maxDepth,
            Policy = policy,
        });
        using var top = new CanonicalSource("/vm/" + NodeName(0), "/vm/" + NodeName(0), images["/vm/" + NodeName(0)]);

        // On a pool thread with a deadline, so a walk that never ends fails the property instead of hanging the run.
        ImageChain chain = Task.Run(() => resolver.ResolveAsync(top).AsTask()).WaitAsync(TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();

        Assert.InRange(chain.Layers.Length, 1, maxDepth + 1);
        var visited = new List<string>();
        foreach (ChainLayer layer in chain.Layers)
        {
            visited.Add(CanonicalPathProvider.Canonical(layer.FileName));
        }

        Assert.Equal(visited.Count, visited.Distinct(StringComparer.Ordinal).Count());
        Assert.True(provider.Opened <= maxDepth + nodes.Length + 1, $"{provider.Opened} opens for a {nodes.Length}-image graph");
        FuzzTargets.RequireNoSwallowedException(chain.Findings);
        ReaderFault.AssertNone(chain);

        TrustReport report = TrustEvaluator.Evaluate(chain);
        Assert.Equal(chain.Layers.Length, report.Layers.Length);
        if (chain.Ending != ChainEnding.Complete)
        {
            Assert.False(report.IsSafe, $"a chain that ended {chain.Ending} was judged safe");
        }

        return chain.Ending;
    }

    /// <summary>Serves images by their canonical path, so every spelling of one image has one identity (as a file's inode).</summary>
    private sealed class CanonicalPathProvider(Dictionary<string, byte[]> images) : IImageSourceProvider
    {
        private int _opened;

        public int Opened => _opened;

        public bool CanOpen(ImageReference reference) => reference.IsLocalPath;

        public ValueTask<IImageSource> OpenAsync(string name, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _opened);
            string canonical = Canonical(name);
            return images.TryGetValue(canonical, out byte[]? data)
                ? new ValueTask<IImageSource>(new CanonicalSource(name, canonical, data))
                : ValueTask.FromException<IImageSource>(new FileNotFoundException($"Could not open '{name}': No such file or directory", name));
        }

        /// <summary>Collapses "//", "." and ".." (relative names are under /vm, where the top image is).</summary>
        public static string Canonical(string name)
        {
            var parts = new List<string>();
            foreach (string part in (name.StartsWith('/') ? name : "/vm/" + name).Split('/'))
            {
                if (part is "" or ".")
                {
                    continue;
                }

                if (part == "..")
                {
                    if (parts.Count > 0)
                    {
                        parts.RemoveAt(parts.Count - 1);
                    }

                    continue;
                }

                parts.Add(part);
            }

            return "/" + string.Join('/', parts);
        }
    }

    private sealed class CanonicalSource(string name, string canonical, byte[] data) : IImageSource
    {
        private readonly MemoryImageSource _bytes = new(name, data);

        public string Name => name;

        public long Length => data.Length;

        public long? AllocatedSize => data.Length;

        public ImageSourceIdentity Identity { get; } = ImageSourceIdentity.ForKey("graph", canonical);

        public ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            _bytes.ReadAtAsync(offset, buffer, cancellationToken);

        public void Dispose() => _bytes.Dispose();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // (c) The upload gate's inspection is the same for every chunking of the same bytes.

    [Fact]
    public void The_upload_verdict_does_not_depend_on_the_chunking()
    {
        byte[][] all = FormatNames.SelectMany(Seeds).Where(s => s.Length <= 8192).ToArray();
        Gen<byte[]> uploads = Gen.Frequency((3, Mutated(all)), (1, Gen.Byte.Array[0, 2048]));
        Gen<int[]> plans = Gen.Frequency((3, Gen.Int[1, 64]), (1, Gen.Int[65, 5000])).Array[1, 6];
        Gen<ImageFormat?> declared = Gen.Frequency((2, Gen.Const((ImageFormat?)null)), (1, Gen.Int[1, 13].Select(f => (ImageFormat?)(ImageFormat)f)));

        Gen.Select(uploads, plans, declared, Gen.Bool).Sample((upload, plan, format, named) =>
        {
            var options = new UploadInspectionOptions
            {
                DeclaredFormat = format,
                Name = named ? "/images/upload.img" : null,
                ComputeSha256 = true,
            };
            string whole = UploadTestHelpers.Describe(Inspect(upload, [Math.Max(1, upload.Length)], options));
            string chunked = UploadTestHelpers.Describe(Inspect(upload, plan, options));
            Assert.Equal(whole, chunked);
        }, iter: ChunkingIterations, print: t => $"plan=[{string.Join(',', t.Item2)}] declared={t.Item3} named={t.Item4} upload={Hex(t.Item1)}");
    }

    private static UploadInspection Inspect(byte[] upload, int[] plan, UploadInspectionOptions options)
    {
        var reader = new PlannedChunkPipeReader(upload, plan);
        UploadInspection inspection = ImageUploadInspector.InspectAsync(reader, options).AsTask().GetAwaiter().GetResult();
        Assert.Equal(upload.Length, reader.Produced);
        ReaderFault.AssertNone(inspection);
        return inspection;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Builders.

    private static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    /// <summary>A differencing VHD made from the qemu-img dynamic VHD fixture (footer copy, dynamic header, BAT).</summary>
    private static byte[] VhdDifferencing() =>
        ImageBytes.VhdDifferencing(Fixture("vhd-dynamic.head"), new Guid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), "base.vhd",
            ("W2ru", Encoding.Unicode.GetBytes(".\\base.vhd")));

    /// <summary>
    /// A small qcow2 v3 image written from the spec (docs/interop/qcow2.txt): 512-byte clusters, header and extensions
    /// in cluster 0, refcount table at cluster 1, its block at 2, L1 at 3; the backing format extension (0xE2792ACA)
    /// when given, then the end marker, then the backing file name.
    /// </summary>
    internal static byte[] Qcow2(string? backing, string? backingFormat)
    {
        const int Cluster = 512;
        byte[] image = new byte[4 * Cluster];
        Span<byte> h = image;
        BinaryPrimitives.WriteUInt32BigEndian(h, 0x514649FB);
        BinaryPrimitives.WriteUInt32BigEndian(h[4..], 3);
        BinaryPrimitives.WriteUInt32BigEndian(h[20..], 9);                        // cluster_bits
        BinaryPrimitives.WriteUInt64BigEndian(h[24..], 1024 * 1024);              // size
        BinaryPrimitives.WriteUInt32BigEndian(h[36..], 32);                       // l1_size: 1 MiB / (64 entries * 512)
        BinaryPrimitives.WriteUInt64BigEndian(h[40..], 3 * Cluster);              // l1_table_offset
        BinaryPrimitives.WriteUInt64BigEndian(h[48..], 1 * Cluster);              // refcount_table_offset
        BinaryPrimitives.WriteUInt32BigEndian(h[56..], 1);                        // refcount_table_clusters
        BinaryPrimitives.WriteUInt32BigEndian(h[96..], 4);                        // refcount_order
        BinaryPrimitives.WriteUInt32BigEndian(h[100..], 104);                     // header_length
        int at = 104;
        if (backingFormat is not null)
        {
            byte[] format = Encoding.ASCII.GetBytes(backingFormat);
            BinaryPrimitives.WriteUInt32BigEndian(h[at..], 0xE2792ACA);
            BinaryPrimitives.WriteUInt32BigEndian(h[(at + 4)..], (uint)format.Length);
            format.CopyTo(h[(at + 8)..]);
            at += 8 + ((format.Length + 7) & ~7);
        }

        at += 8; // end of extensions: type 0, length 0
        if (backing is not null)
        {
            byte[] name = Encoding.UTF8.GetBytes(backing);
            BinaryPrimitives.WriteUInt64BigEndian(h[8..], (ulong)at);
            BinaryPrimitives.WriteUInt32BigEndian(h[16..], (uint)name.Length);
            name.CopyTo(h[at..]);
        }

        BinaryPrimitives.WriteUInt64BigEndian(h[Cluster..], 2 * Cluster);       // refcount table -> block
        for (int i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(h[((2 * Cluster) + (2 * i))..], 1);
        }

        return image;
    }

    private static string Hex(byte[] bytes) => $"{bytes.Length} bytes: {Convert.ToHexString(bytes)}";
}
