using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Formats;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Formats;

/// <summary>
/// Every format reader, driven through a source that fails with EIO at the N-th read for every N up to the
/// number of reads it makes on a valid image, and through a source that returns short reads everywhere. The
/// resolver turns an <see cref="ImageFormatException"/> or an <see cref="IOException"/> into a finding; anything
/// else escaping a reader is a bug, even where the resolver's last-resort catch would hide it.
/// </summary>
public sealed class ReadFaultTests
{
    public static TheoryData<string> Images =>
    [
        "qcow2", "qcow", "qed", "vmdk-sparse", "vmdk-stream", "vmdk-flat", "vmdk-2gb-sparse", "vpc-dynamic", "vpc-fixed",
        "vpc-differencing", "vhdx", "vhdx-differencing", "vdi", "luks", "parallels", "bochs", "cloop", "dmg-plist",
        "dmg-rsrc", "raw",
    ];

    [QemuImgTheory]
    [MemberData(nameof(Images))]
    public async Task Eio_at_every_read_is_a_typed_failure(string kind)
    {
        using var dir = new ScratchDirectory();
        (ImageFormat format, string top, Dictionary<string, byte[]> files) = Make(dir, kind);

        // The valid image first: it must read cleanly, and says how many reads there are to break.
        var clean = new FaultInjectingImageSource.ReadCounter(0);
        LayerFacts facts = await ReadAsync(format, top, files, clean, shortReads: false);
        Assert.Equal(HeaderError.None, facts.Error);

        // Readers whose header fits in the head (read by the resolver, which catches its own EIO) make none.

        for (int n = 1; n <= clean.Count; n++)
        {
            var counter = new FaultInjectingImageSource.ReadCounter(n);
            Exception? thrown = await Record.ExceptionAsync(() => ReadAsync(format, top, files, counter, shortReads: false).AsTask());
            AssertTyped(kind, $"EIO at read {n} of {clean.Count}", thrown);
        }
    }

    [QemuImgTheory]
    [MemberData(nameof(Images))]
    public async Task Short_reads_everywhere_are_a_typed_failure_or_a_result(string kind)
    {
        using var dir = new ScratchDirectory();
        (ImageFormat format, string top, Dictionary<string, byte[]> files) = Make(dir, kind);
        var counter = new FaultInjectingImageSource.ReadCounter(0);
        Exception? thrown = await Record.ExceptionAsync(() => ReadAsync(format, top, files, counter, shortReads: true).AsTask());
        AssertTyped(kind, "short reads", thrown);
    }

    [QemuImgTheory]
    [InlineData("qcow2", 8, 16)]
    [InlineData("qcow", 8, 16)]
    [InlineData("qed", 56, 60)]
    public async Task A_header_read_that_stops_growing_ends_instead_of_asking_again(string format, int offsetField, int sizeField)
    {
        // The backing name moved past the first 4 KiB, so the reader must read more than the head. A source
        // that then returns a few bytes per read never gives the header; the read helper must stop asking.
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-b", "base.raw", "-F", "raw", "t.img", "1M");
        byte[] image = File.ReadAllBytes(dir["t.img"]);
        const int Moved = 8192;
        Array.Resize(ref image, Math.Max(image.Length, Moved + 4096)); // a qcow file can be shorter than that
        bool bigEndian = format != "qed";
        ulong oldOffset = bigEndian ? System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(image.AsSpan(offsetField))
            : System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(offsetField));
        int size = (int)(bigEndian ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(sizeField))
            : System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(sizeField)));
        image.AsSpan((int)oldOffset, size).CopyTo(image.AsSpan(Moved));
        if (bigEndian)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(offsetField), Moved);
        }
        else
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(offsetField), Moved);
        }

        File.WriteAllBytes(dir["moved.img"], image);
        string qemuName = (string)QemuImg.Info(dir.Path, "moved.img", format: format)["backing-filename"]!;
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["moved.img"] = image };
        ImageFormat imageFormat = ImageFormatNames.Parse(format);
        LayerFacts clean = await ReadAsync(imageFormat, "moved.img", files, new FaultInjectingImageSource.ReadCounter(0), shortReads: false);
        Assert.Equal(qemuName, Assert.Single(clean.References).Name);

        Task<LayerFacts> shortRead = Task.Run(() => ReadAsync(imageFormat, "moved.img", files, new FaultInjectingImageSource.ReadCounter(0), shortReads: true).AsTask());
        Exception? thrown = await Record.ExceptionAsync(() => shortRead.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.IsNotType<TimeoutException>(thrown);
        AssertTyped(format, "reads that stop growing", thrown);
    }

    private static void AssertTyped(string kind, string when, Exception? thrown)
    {
        if (thrown is not null and not ImageFormatException and not IOException)
        {
            Assert.Fail($"{kind}, {when}: {thrown.GetType().Name} escaped the reader: {thrown}");
        }
    }

    /// <summary>What the resolver does for one layer: the head (read before the reader runs), then the reader.</summary>
    private static ValueTask<LayerFacts> ReadAsync(
        ImageFormat format, string top, Dictionary<string, byte[]> files, FaultInjectingImageSource.ReadCounter counter, bool shortReads)
    {
        byte[] image = files[top];
        var source = new FaultInjectingImageSource(top, image, counter, shortReads);
        byte[] head = image.AsSpan(0, Math.Min(image.Length, ImageReadLimits.HeadLength)).ToArray();
        var context = new LayerReadContext(source, head, (stored, _) =>
        {
            string name = Path.GetFileName(stored.Name);
            return new ValueTask<IImageSource?>(files.TryGetValue(name, out byte[]? bytes)
                ? new FaultInjectingImageSource(name, bytes, counter, shortReads)
                : null);
        });
        IImageFormatReader reader = FormatReaders.Get(format)!;
        return reader.ReadAsync(context, CancellationToken.None);
    }

    private static (ImageFormat Format, string Top, Dictionary<string, byte[]> Files) Make(ScratchDirectory dir, string kind)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        switch (kind)
        {
            case "qcow2":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
                QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "t.qcow2", "1M");
                QemuImg.Run(dir.Path, "snapshot", "-c", "snap-one", "t.qcow2");
                QemuImg.Run(dir.Path, "snapshot", "-c", "snap-two", "t.qcow2");
                QemuImg.Run(dir.Path, "bitmap", "--add", "t.qcow2", "dirty0");
                return Load(ImageFormat.Qcow2, "t.qcow2");
            case "qcow":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow", "-u", "-b", "base.raw", "-F", "raw", "t.qcow", "1M");
                return Load(ImageFormat.Qcow, "t.qcow");
            case "qed":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "qed", "-u", "-b", "base.raw", "-F", "raw", "t.qed", "1M");
                return Load(ImageFormat.Qed, "t.qed");
            case "vmdk-sparse":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "t.vmdk", "1M");
                return Load(ImageFormat.Vmdk, "t.vmdk");
            case "vmdk-stream":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", "t.vmdk", "1M");
                return Load(ImageFormat.Vmdk, "t.vmdk");
            case "vmdk-flat":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "t.vmdk", "1M");
                return Load(ImageFormat.Vmdk, "t.vmdk", "t-flat.vmdk");
            case "vmdk-2gb-sparse":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "t.vmdk", "3G");
                return Load(ImageFormat.Vmdk, "t.vmdk", "t-s001.vmdk", "t-s002.vmdk");
            case "vpc-dynamic":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "t.vhd", "4M");
                return Load(ImageFormat.Vpc, "t.vhd");
            case "vpc-fixed":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "-o", "subformat=fixed", "t.vhd", "1M");
                return Load(ImageFormat.Vpc, "t.vhd");
            case "vpc-differencing":
            {
                QemuImg.Run(dir.Path, "create", "-q", "-f", "vpc", "d.vhd", "4M");
                byte[] image = ImageBytes.VhdDifferencing(File.ReadAllBytes(dir["d.vhd"]), Guid.NewGuid(), "parent.vhd",
                    ("W2ru", Encoding.Unicode.GetBytes("parent.vhd")), ("MacX", Encoding.UTF8.GetBytes("file:///images/parent.vhd")));
                files["t.vhd"] = image;
                return (ImageFormat.Vpc, "t.vhd", files);
            }

            case "vhdx":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "vhdx", "t.vhdx", "4M");
                return Load(ImageFormat.Vhdx, "t.vhdx");
            case "vhdx-differencing":
            {
                QemuImg.Run(dir.Path, "create", "-q", "-f", "vhdx", "d.vhdx", "4M");
                files["t.vhdx"] = ImageBytes.VhdxDifferencing(File.ReadAllBytes(dir["d.vhdx"]),
                    ("relative_path", "parent.vhdx"), ("absolute_win32_path", "C:\\images\\parent.vhdx"));
                return (ImageFormat.Vhdx, "t.vhdx", files);
            }

            case "vdi":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "vdi", "t.vdi", "4M");
                return Load(ImageFormat.Vdi, "t.vdi");
            case "luks":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "luks", "--object", "secret,id=s0,data=pw", "-o", "key-secret=s0,iter-time=10", "t.luks", "1M");
                return Load(ImageFormat.Luks, "t.luks");
            case "parallels":
                QemuImg.Run(dir.Path, "create", "-q", "-f", "parallels", "t.hdd", "4M");
                return Load(ImageFormat.Parallels, "t.hdd");
            case "bochs":
                files["t.bochs"] = ImageBytes.Bochs(1024 * 1024, 2, 512 * 1024);
                return (ImageFormat.Bochs, "t.bochs", files);
            case "cloop":
                files["t.cloop"] = ImageBytes.Cloop(65536, 4);
                return (ImageFormat.Cloop, "t.cloop", files);
            case "dmg-plist":
                files["t.dmg"] = ImageBytes.DmgWithPlist(2048);
                return (ImageFormat.Dmg, "t.dmg", files);
            case "dmg-rsrc":
                files["t.dmg"] = ImageBytes.DmgWithResourceFork(2048);
                return (ImageFormat.Dmg, "t.dmg", files);
            default:
                QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "t.raw", "1M");
                return Load(ImageFormat.Raw, "t.raw");
        }

        (ImageFormat, string, Dictionary<string, byte[]>) Load(ImageFormat format, string top, params string[] others)
        {
            files[top] = File.ReadAllBytes(dir[top]);
            foreach (string other in others)
            {
                files[other] = File.ReadAllBytes(dir[other]);
            }

            return (format, top, files);
        }
    }
}
