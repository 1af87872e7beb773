using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Streaming;

/// <summary>
/// Stored uploads keep their holes: what the gate copies to a file reads back byte for byte as sent (<c>cmp</c>), and
/// its zero blocks take no room (the file's allocated blocks, from <c>stat</c>), as after <c>cp --sparse=always</c>.
/// </summary>
public sealed class SparseUploadTests
{
    private const long MiB = 1024 * 1024;

    [QemuImgFact]
    public async Task A_256_MiB_raw_holding_4_MiB_of_data_is_stored_identical_with_only_its_data_allocated()
    {
        using var dir = new ScratchDirectory();
        string source = dir["upload.raw"];
        QemuImg.Run(dir.Path, "create", "-f", "raw", source, "256M");
        // Data at the start, unaligned in the middle (its first and last blocks are partly zero), and at the very end.
        WriteRandom(source, 42, [0, 3 * MiB + 1234, 100 * MiB, 255 * MiB]);

        UploadInspection inspection = await StoreAsync(source, dir["stored.raw"], ImageFormat.Raw);

        Assert.True(inspection.IsAccepted, UploadTestHelpers.Describe(inspection));
        Assert.Equal(256 * MiB, inspection.Length);
        AssertIdentical(source, dir["stored.raw"]);
        Assert.InRange(AllocatedBytes(dir["stored.raw"]), 4 * MiB, 16 * MiB);
    }

    [LongQemuImgFact]
    public async Task A_1_GiB_raw_holding_1_MiB_of_data_is_stored_identical_with_at_most_16_MiB_allocated()
    {
        using var dir = new ScratchDirectory();
        string source = dir["upload.raw"];
        QemuImg.Run(dir.Path, "create", "-f", "raw", source, "1G");
        WriteRandom(source, 7, [512 * MiB + 4097]);

        UploadInspection inspection = await StoreAsync(source, dir["stored.raw"], declared: null);

        Assert.True(inspection.IsAccepted, UploadTestHelpers.Describe(inspection));
        Assert.Equal(1024 * MiB, inspection.Length);
        AssertIdentical(source, dir["stored.raw"]);
        Assert.InRange(AllocatedBytes(dir["stored.raw"]), 1 * MiB, 16 * MiB);
    }

    [QemuImgFact]
    public async Task A_qcow2_of_mostly_zero_clusters_is_stored_sparse_and_qemu_img_finds_it_clean_and_equal()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-f", "raw", dir["data.raw"], "256M");
        WriteRandom(dir["data.raw"], 3, [0, 64 * MiB + 512, 200 * MiB]);
        // Metadata preallocated: the L2 tables of the whole disk, and a file as long as the disk, zeros but for the data.
        QemuImg.Run(dir.Path, "convert", "-f", "raw", "-O", "qcow2", "-o", "preallocation=metadata", dir["data.raw"], dir["upload.qcow2"]);
        Assert.True(new FileInfo(dir["upload.qcow2"]).Length >= 256 * MiB);

        UploadInspection inspection = await StoreAsync(dir["upload.qcow2"], dir["stored.qcow2"], declared: null);

        Assert.True(inspection.IsAccepted, UploadTestHelpers.Describe(inspection));
        Assert.Equal(ImageFormat.Qcow2, inspection.Format);
        AssertIdentical(dir["upload.qcow2"], dir["stored.qcow2"]);
        Assert.InRange(AllocatedBytes(dir["stored.qcow2"]), 3 * MiB, 16 * MiB);
        QemuImg.Run(dir.Path, "check", "-f", "qcow2", dir["stored.qcow2"]);
        QemuImg.Run(dir.Path, "compare", "-f", "qcow2", "-F", "qcow2", dir["upload.qcow2"], dir["stored.qcow2"]);
        QemuImg.Run(dir.Path, "compare", "-f", "raw", "-F", "qcow2", dir["data.raw"], dir["stored.qcow2"]);
    }

    [Fact]
    public async Task Without_sparse_storage_a_file_gets_every_block_written()
    {
        using var dir = new ScratchDirectory();
        byte[] data = new byte[8 * MiB];
        data[0] = 1;

        await using (var file = File.Create(dir["stored.raw"]))
        {
            await ImageUploadInspector.InspectAsync(new ChunkedPipeReader((o, c) => data.AsMemory((int)o, c), data.Length, 65536), file, new UploadInspectionOptions { SparseDestination = false });
        }

        Assert.Equal(data, File.ReadAllBytes(dir["stored.raw"]));
        Assert.True(AllocatedBytes(dir["stored.raw"]) >= 8 * MiB);
    }

    public static TheoryData<int[]> Chunkings => new()
    {
        { [7] },
        { [4095, 4097] },
        { [4096] },
        { [(int)MiB + 1] },
        { [3000, 5000, 12345, 1, 65536] },
    };

    [Theory]
    [MemberData(nameof(Chunkings))]
    public async Task Zero_blocks_across_chunk_and_staging_boundaries_are_stored_exactly_over_older_longer_content(int[] plan)
    {
        using var dir = new ScratchDirectory();
        byte[] data = PatternedUpload();
        string stored = dir["stored.raw"];
        // An older, longer file full of 0xFF: none of it may show through a hole or after the end.
        File.WriteAllBytes(stored, Enumerable.Repeat((byte)0xFF, data.Length + (int)MiB).ToArray());

        await using (var file = new FileStream(stored, FileMode.Open, FileAccess.ReadWrite))
        {
            UploadInspection inspection = await ImageUploadInspector.InspectAsync(new PlannedChunkPipeReader(data, plan), file, new UploadInspectionOptions());
            Assert.Equal(data.Length, inspection.Length);
            Assert.Equal(data.Length, file.Position);
        }

        Assert.Equal(data, File.ReadAllBytes(stored));
        Assert.True(AllocatedBytes(stored) < data.Length - MiB, $"{AllocatedBytes(stored)} bytes allocated");
    }

    [Fact]
    public async Task An_upload_stored_from_an_unaligned_position_keeps_what_precedes_it()
    {
        using var dir = new ScratchDirectory();
        byte[] data = PatternedUpload();
        byte[] prefix = Enumerable.Range(0, 1000).Select(i => (byte)(i | 1)).ToArray();
        string stored = dir["stored.raw"];

        await using (var file = new FileStream(stored, FileMode.Create, FileAccess.ReadWrite))
        {
            file.Write(prefix);
            await ImageUploadInspector.InspectAsync(new PlannedChunkPipeReader(data, [4095, 4097]), file, new UploadInspectionOptions());
            Assert.Equal(prefix.Length + data.Length, file.Length);
        }

        Assert.Equal(prefix.Concat(data).ToArray(), File.ReadAllBytes(stored));
    }

    [Fact]
    public async Task Data_arriving_in_4_KiB_segments_goes_to_the_file_in_large_writes()
    {
        using var dir = new ScratchDirectory();
        byte[] data = new byte[6 * MiB];
        new Random(5).NextBytes(data.AsSpan(0, 2 * (int)MiB)); // 2 MiB of data, then 4 MiB of zeros

        await using (var file = new CountingFileStream(dir["stored.raw"]))
        {
            await ImageUploadInspector.InspectAsync(new ChunkedPipeReader((o, c) => data.AsMemory((int)o, c), data.Length, 4096), file, new UploadInspectionOptions());
            Assert.InRange(file.Writes.Count, 1, 3);
            Assert.Equal(2 * MiB, file.Writes.Sum());
        }

        Assert.Equal(data, File.ReadAllBytes(dir["stored.raw"]));
    }

    [Fact]
    public async Task A_destination_that_cannot_seek_gets_every_byte_in_order()
    {
        byte[] data = PatternedUpload();
        var memory = new MemoryStream();
        await using var forwardOnly = new ForwardOnlyStream(memory);

        UploadInspection inspection = await ImageUploadInspector.InspectAsync(new PlannedChunkPipeReader(data, [4095, 4097]), forwardOnly, new UploadInspectionOptions());

        Assert.Equal(data.Length, inspection.Length);
        Assert.Equal(data.Length, forwardOnly.Written);
        Assert.Equal(data, memory.ToArray());
    }

    [Fact]
    public async Task A_character_device_that_seeks_is_not_a_regular_file_and_gets_every_byte()
    {
        byte[] data = PatternedUpload();
        // /dev/null seeks, but has no holes and no length to set: storing there must neither skip nor cut.
        await using var device = new CountingFileStream("/dev/null", FileMode.Open);
        Assert.True(device.CanSeek);

        UploadInspection inspection = await ImageUploadInspector.InspectAsync(new PlannedChunkPipeReader(data, [65536]), device, new UploadInspectionOptions());

        Assert.Equal(data.Length, inspection.Length);
        Assert.Equal(data.Length, device.Writes.Sum());
    }

    [Fact]
    public async Task A_memory_stream_is_not_a_file_and_gets_every_byte()
    {
        byte[] data = PatternedUpload();
        using var memory = new MemoryStream();

        await ImageUploadInspector.InspectAsync(new PlannedChunkPipeReader(data, [65536]), memory, new UploadInspectionOptions());

        Assert.Equal(data, memory.ToArray());
    }

    /// <summary>
    /// About 3.5 MiB: data, zero runs of lengths around the 4 KiB block (one short, one long, whole), a data run across
    /// the 1 MiB staging boundary, isolated non-zero bytes in a zero block's first and last byte, and a trailing hole
    /// whose length is not a multiple of the block.
    /// </summary>
    private static byte[] PatternedUpload()
    {
        byte[] data = new byte[(int)(3 * MiB + MiB / 2 + 123)];
        var random = new Random(11);
        random.NextBytes(data.AsSpan(0, 10_000));
        random.NextBytes(data.AsSpan(10_000 + 4095, 3000));
        random.NextBytes(data.AsSpan(20_000 + 4097 * 3, 5));
        data[40 * 4096] = 9;
        data[(42 * 4096) - 1] = 9;
        random.NextBytes(data.AsSpan((int)MiB - 7000, 20_000));
        random.NextBytes(data.AsSpan((int)(2 * MiB) + 1, (int)MiB / 2));
        return data;
    }

    private static async Task<UploadInspection> StoreAsync(string source, string destination, ImageFormat? declared)
    {
        await using FileStream upload = File.OpenRead(source);
        await using FileStream stored = File.Create(destination); // the README's defaults
        PipeReader body = PipeReader.Create(upload, new StreamPipeReaderOptions(bufferSize: 64 * 1024));
        return await new ImageUploadGate().InspectAsync(body, stored, destination, declared, upload.Length);
    }

    private static void WriteRandom(string path, int seed, long[] offsets)
    {
        var random = new Random(seed);
        byte[] chunk = new byte[MiB];
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        foreach (long offset in offsets)
        {
            random.NextBytes(chunk);
            file.Position = offset;
            file.Write(chunk);
        }
    }

    private static void AssertIdentical(string expected, string actual)
    {
        ProcessResult cmp = ProcessRunner.Run("cmp", [expected, actual]);
        Assert.True(cmp.ExitCode == 0, $"cmp {expected} {actual}: {cmp.StandardOutput}{cmp.StandardError}");
    }

    /// <summary>The file's allocated bytes: <c>st_blocks</c> × 512, as <c>stat -c %b</c> prints it.</summary>
    private static long AllocatedBytes(string path) =>
        long.Parse(ProcessRunner.Run("stat", ["-c", "%b", path]).Require("stat").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;

    /// <summary>A file that records the size of every write that reaches it.</summary>
    private sealed class CountingFileStream(string path, FileMode mode = FileMode.Create) : FileStream(path, mode, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous)
    {
        public List<long> Writes { get; } = [];

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes.Add(buffer.Length);
            return base.WriteAsync(buffer, cancellationToken);
        }
    }

    /// <summary>A stream written forward only, like a pipe or a socket: it cannot seek.</summary>
    private sealed class ForwardOnlyStream(Stream inner) : Stream
    {
        public long Written { get; private set; }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            Written += count;
            inner.Write(buffer, offset, count);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Written += buffer.Length;
            return inner.WriteAsync(buffer, cancellationToken);
        }
    }
}
