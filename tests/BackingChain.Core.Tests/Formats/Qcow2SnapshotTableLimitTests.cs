using System;
using System.Buffers.Binary;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using BackingChain.Formats.Qcow2;
using BackingChain.Formats;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Formats;

/// <summary>
/// The qcow2 snapshot table is bounded before it is read, as qemu 7.2 bounds it (block/qcow2.h,
/// qcow2-snapshot.c): at most 1 KiB of extra data per entry and 64 MiB for the table, so an image whose entries
/// carry 64 KiB ids and names cannot make the reader hold more than that. qemu-img is the oracle for the verdict.
/// </summary>
public sealed class Qcow2SnapshotTableLimitTests
{
    private const int TableOffset = 0x100000;

    [QemuImgFact]
    public async Task Entries_with_64_KiB_ids_and_names_past_64_MiB_are_refused_like_qemu()
    {
        using var dir = new ScratchDirectory();
        string path = dir["big.qcow2"];
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "big.qcow2", "1M");

        // Each entry: 40-byte header, no extra data, a 65535-byte id and name (zeros): 131,112 bytes, already 8-aligned.
        const int Entries = 520; // 520 × 131,112 = 68.2 MB > 64 MiB; the file is sparse.
        const int EntrySize = 40 + 65535 + 65535 + 2;
        using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            file.SetLength(TableOffset + ((long)Entries * EntrySize));
            byte[] entry = new byte[40];
            BinaryPrimitives.WriteUInt16BigEndian(entry.AsSpan(12), 65535);
            BinaryPrimitives.WriteUInt16BigEndian(entry.AsSpan(14), 65535);
            for (int i = 0; i < Entries; i++)
            {
                file.Position = TableOffset + ((long)i * EntrySize);
                file.Write(entry);
            }

            PatchSnapshotHeader(file, Entries);
        }

        (int exit, _, string stderr) = QemuImg.TryRun(dir.Path, "info", "big.qcow2");
        Assert.NotEqual(0, exit);
        Assert.Contains("Snapshot table is too big", stderr, StringComparison.Ordinal);

        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Qcow2, path);
        Assert.Equal(HeaderError.InvalidSize, facts.Error);
        Assert.Equal("Snapshot table is too big", facts.ErrorMessage);
    }

    [QemuImgFact]
    public async Task Extra_data_over_1_KiB_is_refused_like_qemu()
    {
        using var dir = new ScratchDirectory();
        string path = dir["extra.qcow2"];
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "extra.qcow2", "1M");
        using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            file.SetLength(TableOffset + 65536);
            byte[] entry = new byte[40];
            BinaryPrimitives.WriteUInt32BigEndian(entry.AsSpan(36), 1025);
            file.Position = TableOffset;
            file.Write(entry);
            PatchSnapshotHeader(file, 1);
        }

        (int exit, _, string stderr) = QemuImg.TryRun(dir.Path, "info", "extra.qcow2");
        Assert.NotEqual(0, exit);
        Assert.Contains("Too much extra metadata in snapshot table entry 0", stderr, StringComparison.Ordinal);

        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Qcow2, path);
        Assert.Equal(HeaderError.InvalidSize, facts.Error);
        Assert.Equal("Too much extra metadata in snapshot table entry 0", facts.ErrorMessage);
    }

    [QemuImgFact]
    public async Task Snapshot_names_are_still_listed_under_the_caps()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "s.qcow2", "1M");
        QemuImg.Run(dir.Path, "snapshot", "-c", "first", "s.qcow2");
        QemuImg.Run(dir.Path, "snapshot", "-c", "second", "s.qcow2");
        (LayerFacts facts, _) = await HostileInputTestSupport.ReadAsync(ImageFormat.Qcow2, dir["s.qcow2"]);
        Assert.Equal(HeaderError.None, facts.Error);
        var info = Assert.IsType<Qcow2FormatInfo>(facts.FormatSpecific);
        Assert.Equal(["first", "second"], info.Snapshots.Select(s => s.Name));
    }

    private static void PatchSnapshotHeader(FileStream file, int count)
    {
        byte[] fields = new byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(fields, (uint)count);
        BinaryPrimitives.WriteUInt64BigEndian(fields.AsSpan(4), TableOffset);
        file.Position = 60; // nb_snapshots, then snapshots_offset
        file.Write(fields);
    }
}
