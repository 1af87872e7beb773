using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Editing;
using BackingChain.Formats.Qcow2;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Editing;

/// <summary>
/// Our in-place rebase against <c>qemu-img rebase -u</c> on an identical copy: same info, same header
/// bytes up to the end of the name, and <c>qemu-img check</c> passes.
/// </summary>
public sealed class BackingFileEditorTests
{
    public static TheoryData<string, string, string, string> Qcow2Cases => new()
    {
        // label, create options, new backing name, new backing format
        { "v3 record a format", "", "base.raw", "raw" },
        { "v2 record a format", "compat=0.10", "base.raw", "raw" },
        { "v3 4k clusters (no feature table)", "cluster_size=4096", "base.raw", "raw" },
        { "v3 512-byte clusters", "cluster_size=512", "base.raw", "raw" },
        { "lazy refcounts", "lazy_refcounts=on", "sub/../base.qcow2", "qcow2" },
        { "long name", "", new string('n', 900) + ".raw", "raw" },
        { "external data file", "data_file=data.raw", "base.raw", "raw" },
        { "zstd", "compression_type=zstd", "/abs/base.vmdk", "vmdk" },
        { "existing backing, longer name", "backing_file=old.raw,backing_fmt=raw", "much/longer/path/to/base.qcow2", "qcow2" },
        { "existing backing, shorter name", "backing_file=a/very/long/old/name.raw,backing_fmt=raw", "b.raw", "raw" },
        { "existing backing, format changed", "backing_file=old.raw,backing_fmt=raw", "old.raw", "qcow2" },
        { "v2 existing backing", "compat=0.10,backing_file=old.raw,backing_fmt=raw", "other-and-longer.qcow2", "qcow2" },
        { "v2 parallels format", "compat=0.10", "base.hdd", "parallels" },
    };

    [QemuImgTheory]
    [MemberData(nameof(Qcow2Cases))]
    public async Task Qcow2_rebase_matches_qemu_img_rebase_unsafe(string label, string options, string name, string format)
    {
        _ = label;
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["old.raw"], new byte[1 << 20]);
        File.WriteAllBytes(dir["a/very/long/old/name.raw".Replace("/", "_", StringComparison.Ordinal)], []);
        var create = new List<string> { "create", "-q", "-f", "qcow2", "-u" };
        if (options.Length > 0)
        {
            create.Add("-o");
            create.Add(options);
        }

        create.AddRange(["ours.qcow2", "1M"]);
        QemuImg.Run(dir.Path, [.. create]);
        File.Copy(dir["ours.qcow2"], dir["theirs.qcow2"]);

        bool recorded = BackingFileEditor.SetBackingFile(dir["ours.qcow2"], name, format);
        QemuImg.Run(dir.Path, "rebase", "-u", "-b", name, "-F", format, "theirs.qcow2");

        Assert.True(recorded);
        AssertSameAsQemu(dir, "ours.qcow2", "theirs.qcow2", "qcow2");
    }

    [QemuImgFact]
    public async Task Qcow2_removal_matches_qemu_img()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "base.raw", "-F", "raw", "ours.qcow2", "1M");
        File.Copy(dir["ours.qcow2"], dir["theirs.qcow2"]);

        BackingFileEditor.RemoveBackingFile(dir["ours.qcow2"]);
        QemuImg.Run(dir.Path, "rebase", "-u", "-b", "", "theirs.qcow2");

        AssertSameAsQemu(dir, "ours.qcow2", "theirs.qcow2", "qcow2");
    }

    [QemuImgTheory]
    [InlineData("", "base.raw", "raw")]
    [InlineData("", "base.qcow2", "qcow2")]
    [InlineData("backing_file=a-much-longer-old-name.raw,backing_fmt=raw", "b.qcow2", "qcow2")]
    [InlineData("backing_file=old.qcow2,backing_fmt=qcow2", "new-and-longer.raw", "raw")]
    public async Task Qed_rebase_matches_qemu_img(string options, string name, string format)
    {
        using var dir = new ScratchDirectory();
        var create = new List<string> { "create", "-q", "-f", "qed", "-u" };
        if (options.Length > 0)
        {
            create.Add("-o");
            create.Add(options);
        }

        create.AddRange(["ours.qed", "1M"]);
        QemuImg.Run(dir.Path, [.. create]);
        File.Copy(dir["ours.qed"], dir["theirs.qed"]);

        bool recorded = BackingFileEditor.SetBackingFile(dir["ours.qed"], name, format);
        QemuImg.Run(dir.Path, "rebase", "-u", "-b", name, "-F", format, "theirs.qed");

        Assert.Equal(format == "raw", recorded);
        AssertSameAsQemu(dir, "ours.qed", "theirs.qed", "qed");
    }

    [QemuImgFact]
    public async Task Refuses_a_name_longer_than_1023_bytes_and_writes_nothing()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        byte[] before = File.ReadAllBytes(dir["image.qcow2"]);

        var error = Assert.Throws<BackingEditException>(() =>
            BackingFileEditor.SetBackingFile(dir["image.qcow2"], new string('x', 1024), "raw"));

        Assert.Equal(BackingEditError.InvalidBackingName, error.Error);
        Assert.Equal(before, File.ReadAllBytes(dir["image.qcow2"]));
        Assert.Equal(0, QemuImg.TryRun(dir.Path, "rebase", "-u", "-b", new string('x', 1023), "-F", "raw", "image.qcow2").ExitCode);
        Assert.NotEqual(0, QemuImg.TryRun(dir.Path, "rebase", "-u", "-b", new string('x', 1024), "-F", "raw", "image.qcow2").ExitCode);
    }

    [QemuImgTheory]
    [InlineData("0123456789abcdef", BackingEditError.InvalidBackingFormat)]
    [InlineData("nosuchformat", BackingEditError.InvalidBackingFormat)]
    [InlineData("", BackingEditError.InvalidBackingFormat)]
    public async Task Refuses_bad_formats(string format, BackingEditError expected)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");

        var error = Assert.Throws<BackingEditException>(() =>
            BackingFileEditor.SetBackingFile(dir["image.qcow2"], "base.raw", format));

        Assert.Equal(expected, error.Error);
    }

    [QemuImgFact]
    public async Task Refuses_what_does_not_fit_in_cluster_0()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "image.qcow2", "1M");

        var error = Assert.Throws<BackingEditException>(() =>
            BackingFileEditor.SetBackingFile(dir["image.qcow2"], new string('x', 500), "raw"));

        Assert.Equal(BackingEditError.DoesNotFit, error.Error);
        Assert.NotEqual(0, QemuImg.TryRun(dir.Path, "rebase", "-u", "-b", new string('x', 500), "-F", "raw", "image.qcow2").ExitCode);
    }

    [QemuImgFact]
    public async Task Refuses_a_backing_for_a_raw_external_data_file()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=data.raw,data_file_raw=on", "image.qcow2", "1M");

        var error = Assert.Throws<BackingEditException>(() =>
            BackingFileEditor.SetBackingFile(dir["image.qcow2"], "base.raw", "raw"));

        Assert.Equal(BackingEditError.RawDataFileWithBacking, error.Error);
    }

    [QemuImgTheory]
    [InlineData(1UL << 40, BackingEditError.UnsupportedFeature)] // unknown incompatible bit
    [InlineData(1UL << 1, BackingEditError.UnsupportedFeature)] // corrupt bit
    public async Task Refuses_unknown_incompatible_features_and_corrupt_images(ulong bits, BackingEditError expected)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        byte[] bytes = File.ReadAllBytes(dir["image.qcow2"]);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(72), bits);
        File.WriteAllBytes(dir["image.qcow2"], bytes);

        var error = Assert.Throws<BackingEditException>(() =>
            BackingFileEditor.SetBackingFile(dir["image.qcow2"], "base.raw", "raw"));

        Assert.Equal(expected, error.Error);
        Assert.Equal(bytes, File.ReadAllBytes(dir["image.qcow2"]));
    }

    [Fact]
    public async Task Refuses_other_formats()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["disk.raw"], new byte[4096]);

        var error = Assert.Throws<BackingEditException>(() =>
            BackingFileEditor.SetBackingFile(dir["disk.raw"], "base.raw", "raw"));

        Assert.Equal(BackingEditError.UnsupportedFormat, error.Error);
    }

    [QemuImgFact]
    public async Task Unknown_extensions_are_kept_and_unknown_autoclear_bits_cleared()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "image.qcow2", "1M");
        byte[] bytes = File.ReadAllBytes(dir["image.qcow2"]);
        // An unknown extension (magic 0x12345678, 5 bytes) where the end marker was, then a new end marker.
        byte[] extension = Convert.FromHexString("12345678" + "00000005" + "68656C6C6F000000" + "0000000000000000");
        extension.CopyTo(bytes, 112);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(88), 1UL << 7);
        File.WriteAllBytes(dir["image.qcow2"], bytes);

        BackingFileEditor.SetBackingFile(dir["image.qcow2"], "base.raw", "raw");

        byte[] after = File.ReadAllBytes(dir["image.qcow2"]);
        Qcow2Header header = Qcow2Header.Parse(after.AsSpan(0, 4096));
        Assert.Equal(1, header.UnknownExtensionCount);
        Assert.Equal("base.raw", header.GetBackingFileName(after));
        Assert.Equal("raw", header.GetBackingFormat(after));
        Assert.Equal(Qcow2AutoclearFeatures.None, header.AutoclearFeatures);
        Assert.Equal(0x70, (int)(after.AsSpan(0, 4096).IndexOf(Convert.FromHexString("E2792ACA"))));
        Assert.True(after.AsSpan(0, 4096).IndexOf(Convert.FromHexString("1234567800000005")) > 0x70);
        Assert.Equal(0, Check(dir.Path, "image.qcow2", "qcow2").ExitCode);
    }

    /// <summary>Every prefix of the planned writes leaves a header that parses, naming the old or the new backing file, never a mixture of names.</summary>
    [QemuImgTheory]
    [InlineData("", "base.raw")]
    [InlineData("backing_file=old.raw,backing_fmt=raw", "a-much-longer-backing-name-than-before.qcow2")]
    [InlineData("cluster_size=4096,backing_file=old-and-long-name.qcow2,backing_fmt=qcow2", "n.raw")]
    [InlineData("compat=0.10,backing_file=old.raw", "new.raw")]
    public void Every_prefix_of_the_writes_leaves_the_old_or_the_new_name_and_format(string options, string name)
    {
        using var dir = new ScratchDirectory();
        var create = new List<string> { "create", "-q", "-f", "qcow2", "-u" };
        if (options.Length > 0)
        {
            create.Add("-o");
            create.Add(options + (options.Contains("backing_file", StringComparison.Ordinal) && !options.Contains("backing_fmt", StringComparison.Ordinal) ? ",backing_fmt=raw" : ""));
        }

        create.AddRange(["image.qcow2", "1M"]);
        QemuImg.Run(dir.Path, [.. create]);
        byte[] original = File.ReadAllBytes(dir["image.qcow2"]);
        int clusterSize = Qcow2Header.Parse(original).ClusterSize;
        byte[] cluster0 = original[..clusterSize];
        string? oldName = Qcow2Header.Parse(cluster0).GetBackingFileName(cluster0);
        string? oldFormat = string.IsNullOrEmpty(oldName) ? null : Qcow2Header.Parse(cluster0).GetBackingFormat(cluster0);
        oldName = string.IsNullOrEmpty(oldName) ? null : oldName;

        List<HeaderWrite> writes = Qcow2BackingEdit.Plan(cluster0, false, Encoding.UTF8.GetBytes(name), "raw"u8.ToArray());

        byte[] state = (byte[])cluster0.Clone();
        for (int i = 0; i <= writes.Count; i++)
        {
            Assert.True(Qcow2Header.TryParse(state, out Qcow2Header header, out HeaderError error), $"after {i} writes: {error}");
            // Without a backing file, a format extension means nothing (qemu ignores it): the state is "none".
            string? currentName = header.GetBackingFileName(state);
            (string? Name, string? Format) current = string.IsNullOrEmpty(currentName) ? (null, null) : (currentName, header.GetBackingFormat(state));
            Assert.True(current == (oldName, oldFormat) || current == (name, "raw"), $"after {i} writes the backing file is ('{current.Name}', '{current.Format}')");
            if (i < writes.Count)
            {
                writes[i].Data.CopyTo(state, (int)writes[i].Offset);
            }
        }

        Assert.Equal(name, Qcow2Header.Parse(state).GetBackingFileName(state));
        Assert.Equal("raw", Qcow2Header.Parse(state).GetBackingFormat(state));
    }

    [QemuImgFact]
    public async Task Relocate_rewrites_absolute_names_after_a_move()
    {
        using var dir = new ScratchDirectory();
        string oldRoot = dir["old"];
        Directory.CreateDirectory(Path.Combine(oldRoot, "base"));
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "old/base/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", Path.Combine(oldRoot, "base", "base.raw"), "-F", "raw", "old/top.qcow2");
        Directory.Move(oldRoot, dir["new"]);

        string? name = BackingFileEditor.Relocate(dir["new/top.qcow2"], Path.Combine(oldRoot, "top.qcow2"), oldRoot, dir["new"]);

        Assert.Equal("base/base.raw", name);
        JsonNode info = QemuImg.Info(dir.Path, "new/top.qcow2", backingChain: true);
        Assert.Equal(2, info.AsArray().Count);
        Assert.Equal("raw", (string)info[0]!["backing-filename-format"]!);
    }

    [Theory]
    [InlineData("base.raw", "/a/vm/top.qcow2", "/b/vm/top.qcow2", "/a", "/b", "base.raw")]
    [InlineData("/a/vm/base.raw", "/a/vm/top.qcow2", "/b/vm/top.qcow2", "/a", "/b", "base.raw")]
    [InlineData("/a/base/base.raw", "/a/vm/top.qcow2", "/b/vm/top.qcow2", "/a", "/b", "../base/base.raw")]
    [InlineData("../base/base.raw", "/a/vm/top.qcow2", "/b/vm/top.qcow2", "/a/vm", "/b/vm", "/a/base/base.raw")]
    [InlineData("/shared/base.raw", "/a/vm/top.qcow2", "/b/vm/top.qcow2", "/a", "/b", "/shared/base.raw")]
    [InlineData("nbd://host/export", "/a/top.qcow2", "/b/top.qcow2", "/a", "/b", "nbd://host/export")]
    [InlineData("./x/../base.raw", "/a/top.qcow2", "/b/c/top.qcow2", "/a", "/b/c", "base.raw")]
    public void Relocate_is_a_pure_function_of_the_paths(string stored, string oldImage, string newImage, string oldRoot, string newRoot, string expected) =>
        Assert.Equal(expected, BackingNames.Relocate(stored, oldImage, newImage, oldRoot, newRoot));

    [Theory]
    [InlineData("/a/b/top.qcow2", "/a/b/base.raw", "base.raw")]
    [InlineData("/a/b/top.qcow2", "/a/c/base.raw", "../c/base.raw")]
    [InlineData("/top.qcow2", "/x/y/base.raw", "x/y/base.raw")]
    [InlineData("/a/b/c/top.qcow2", "/base.raw", "../../../base.raw")]
    public void MakeRelative_names_the_backing_from_the_image_directory(string image, string backing, string expected) =>
        Assert.Equal(expected, BackingNames.MakeRelative(image, backing));

    /// <summary>Same qemu-img info, same header bytes up to the end of the backing name, and a clean check.</summary>
    private static void AssertSameAsQemu(ScratchDirectory dir, string ours, string theirs, string format)
    {
        JsonNode expected = QemuImg.Info(dir.Path, theirs, format: format);
        JsonNode actual = QemuImg.Info(dir.Path, ours, format: format);
        foreach (string key in new[] { "backing-filename", "backing-filename-format", "full-backing-filename" })
        {
            Assert.Equal(expected[key]?.ToJsonString(), actual[key]?.ToJsonString());
        }

        // The names differ, and so may the allocation (qemu opens the image read/write); the rest must not.
        foreach (string key in new[] { "filename", "actual-size" })
        {
            expected.AsObject().Remove(key);
            actual.AsObject().Remove(key);
        }

        expected.AsObject().Remove("full-backing-filename");
        actual.AsObject().Remove("full-backing-filename");
        List<string> differences = JsonComparison.Differences(expected, actual);
        Assert.True(differences.Count == 0, string.Join("\n", differences));

        byte[] a = File.ReadAllBytes(dir[ours]);
        byte[] b = File.ReadAllBytes(dir[theirs]);
        int end = HeaderEnd(b, format);
        Assert.True(a.AsSpan(0, end).SequenceEqual(b.AsSpan(0, end)), $"headers differ before byte {end}: first at {a.AsSpan(0, end).CommonPrefixLength(b.AsSpan(0, end))}");
        (int exit, string stdout, string stderr) = Check(dir.Path, ours, format);
        Assert.True(exit == 0, stdout + stderr);
    }

    /// <summary><c>qemu-img check</c> without opening the backing file, which these tests do not create.</summary>
    private static (int ExitCode, string StandardOutput, string StandardError) Check(string directory, string file, string format) =>
        QemuImg.TryRun(directory, "check", $"json:{{\"driver\":\"{format}\",\"backing\":null,\"file\":{{\"driver\":\"file\",\"filename\":\"{file}\"}}}}");

    private static int HeaderEnd(byte[] image, string format)
    {
        if (format == "qed")
        {
            return 64 + (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(60));
        }

        Qcow2Header header = Qcow2Header.Parse(image.AsSpan(0, Math.Min(image.Length, 1 << 21)));
        if (header.BackingFileOffset != 0)
        {
            return (int)header.BackingFileOffset + (int)header.BackingFileSize;
        }

        // No backing name: up to the end marker.
        return image.AsSpan(0, header.ClusterSize).LastIndexOfAnyExcept((byte)0) + 1;
    }
}
