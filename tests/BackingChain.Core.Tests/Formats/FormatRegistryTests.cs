using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using BackingChain.Detection;
using BackingChain.Formats;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Formats;

/// <summary>
/// A format is one folder plus one registry line: every format has exactly one reader, which owns its qemu name,
/// its signatures and its per-format answers; nothing else in the library switches on the format.
/// </summary>
public sealed partial class FormatRegistryTests
{
    public static TheoryData<ImageFormat> KnownFormats()
    {
        var data = new TheoryData<ImageFormat>();
        foreach (ImageFormat format in Enum.GetValues<ImageFormat>().Where(f => f != ImageFormat.Unknown))
        {
            data.Add(format);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(KnownFormats))]
    public void Every_format_has_exactly_one_reader_with_a_name_that_round_trips_and_a_signature(ImageFormat format)
    {
        IImageFormatReader reader = Assert.Single(FormatReaders.All, r => r.Format == format);
        Assert.Same(reader, FormatReaders.Get(format));
        Assert.Equal(reader.QemuName, format.GetQemuName());
        Assert.True(ImageFormatNames.TryParse(reader.QemuName, out ImageFormat parsed));
        Assert.Equal(format, parsed);
        Assert.Equal(format, ImageFormatNames.Parse(reader.QemuName));
        Assert.NotEmpty(reader.Signatures);
    }

    [Fact]
    public void Unknown_and_undefined_values_have_no_reader_and_no_name()
    {
        Assert.Null(FormatReaders.Get(ImageFormat.Unknown));
        Assert.Null(FormatReaders.Get((ImageFormat)999));
        Assert.Null(FormatReaders.Get((ImageFormat)(-1)));
        Assert.Equal("unknown", ImageFormat.Unknown.GetQemuName());
        Assert.Equal("unknown", ((ImageFormat)999).GetQemuName());
        Assert.False(ImageFormatNames.TryParse("unknown", out _));
        Assert.False(ImageFormatNames.TryParse("QCOW2", out _)); // qemu's -f is case-sensitive
        Assert.False(ImageFormatNames.TryParse("qcow22", out _));
        Assert.False(ImageFormatNames.TryParse("", out _));
        Assert.Throws<ArgumentException>(() => ImageFormatNames.Parse("qcow3"));
    }

    [QemuImgFact]
    public void Every_registered_name_is_a_qemu_driver()
    {
        // qemu-img's help ends with the drivers it was built with: "Supported formats: blkdebug ... vvfat".
        string help = QemuImg.TryRun(Path.GetTempPath(), "--help").StandardOutput;
        string line = help.Split('\n').Single(l => l.StartsWith("Supported formats:", StringComparison.Ordinal));
        HashSet<string> drivers = [.. line["Supported formats:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)];
        foreach (IImageFormatReader reader in FormatReaders.All)
        {
            Assert.Contains(reader.QemuName, drivers);
        }
    }

    /// <summary>The formats qemu-img 7.2 can create (the others are read-only drivers in qemu).</summary>
    public static TheoryData<ImageFormat> FormatsQemuImgCreates() =>
    [
        ImageFormat.Raw, ImageFormat.Qcow2, ImageFormat.Qcow, ImageFormat.Qed, ImageFormat.Vmdk,
        ImageFormat.Vpc, ImageFormat.Vhdx, ImageFormat.Vdi, ImageFormat.Parallels,
    ];

    [QemuImgTheory]
    [MemberData(nameof(FormatsQemuImgCreates))]
    public void A_reader_says_qemu_opens_a_backing_image_exactly_when_qemu_img_creates_one(ImageFormat format)
    {
        using var dir = new ScratchDirectory();
        // The base has the same format: qemu's vmdk driver takes only a vmdk backing image.
        string name = format.GetQemuName();
        QemuImg.Run(dir.Path, "create", "-f", name, "base.img", "1M");
        (int exit, _, _) = QemuImg.TryRun(dir.Path, "create", "-f", name, "-b", "base.img", "-F", name, "top.img", "1M");
        Assert.Equal(exit == 0, FormatReaders.Get(format)!.QemuOpensBacking);
    }

    [QemuImgTheory]
    [MemberData(nameof(FormatsQemuImgCreates))]
    public void No_probe_scores_above_the_maximum_the_detector_stops_at(ImageFormat format)
    {
        // The probe stops at the first reader that scores MaxProbeScore: that is qemu's answer only while no reader
        // scores more. Every reader, on an image of every format qemu-img makes, and on that image's name as a DMG's.
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", format.GetQemuName(), "image.dmg", "1M");
        byte[] head = new byte[ImageFormatDetector.ProbeLength];
        using (FileStream file = File.OpenRead(dir["image.dmg"]))
        {
            file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }

        foreach (string name in new[] { "image.img", "image.dmg" })
        {
            // qemu's rule asked of every reader: the highest score, the earliest reader on a tie.
            ImageFormat expected = ImageFormat.Raw;
            int best = 0;
            foreach (IImageFormatReader reader in FormatReaders.All)
            {
                int score = reader.Probe(head, name);
                Assert.InRange(score, 0, ImageFormatDetector.MaxProbeScore);
                if (score > best)
                {
                    (best, expected) = (score, reader.Format);
                }
            }

            Assert.Equal(expected, ImageFormatDetector.Detect(head, name, 1024 * 1024));
        }

        Assert.Equal(format, ImageFormatDetector.Detect(head, "image.img", 1024 * 1024));
    }

    [Fact]
    public void Parsing_a_name_allocates_nothing()
    {
        ReadOnlySpan<char> name = "parallels".AsSpan();
        _ = ImageFormatNames.TryParse(name, out _);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            _ = ImageFormatNames.TryParse(name, out _);
            _ = ImageFormatNames.TryParse("nope".AsSpan(), out _);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>
    /// What the reader owns is asked of the registry: a per-format switch arm (<c>ImageFormat.Vpc =&gt;</c>, <c>case
    /// ImageFormat.Vpc:</c>, <c>ImageFormat.Qcow2 or ImageFormat.Qed</c>) anywhere else in the library is a format
    /// that a new format would have to be added to by hand.
    /// </summary>
    [Fact]
    public void No_switch_on_the_format_remains_outside_the_format_folders_and_the_registry()
    {
        string src = Path.Combine(RepositoryRoot(), "src", "BackingChain.Core");
        string formats = Path.Combine(src, "Formats") + Path.DirectorySeparatorChar;
        var found = new List<string>();
        foreach (string file in Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(src, file);
            bool inFormatFolder = file.StartsWith(formats, StringComparison.Ordinal)
                && Path.GetRelativePath(formats, file).Contains(Path.DirectorySeparatorChar, StringComparison.Ordinal);
            if (inFormatFolder || relative == Path.Combine("Formats", "FormatReaders.cs")
                || relative.StartsWith("obj" + Path.DirectorySeparatorChar, StringComparison.Ordinal)
                || relative.StartsWith("bin" + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                continue;
            }

            string[] lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                if (FormatSwitchArm().IsMatch(lines[i]))
                {
                    found.Add($"{relative}:{i + 1}: {lines[i].Trim()}");
                }
            }
        }

        Assert.True(found.Count == 0, "per-format switches outside Formats/<Format>/ and the registry:\n" + string.Join("\n", found));
    }

    [Fact]
    public void The_switch_scan_sees_the_shapes_it_forbids()
    {
        Assert.Matches(FormatSwitchArm(), "        ImageFormat.Qcow2 => \"qcow2\",");
        Assert.Matches(FormatSwitchArm(), "            case ImageFormat.Vpc:");
        Assert.Matches(FormatSwitchArm(), "if (layer.Format is not (ImageFormat.Qcow2 or ImageFormat.Qed))");
        Assert.Matches(FormatSwitchArm(), "return format is ImageFormat.Raw or ImageFormat.Luks;");
        Assert.DoesNotMatch(FormatSwitchArm(), "if (layer.Format == ImageFormat.Raw)");
        Assert.DoesNotMatch(FormatSwitchArm(), "ImageFormat content = ImageFormat.Raw;");
    }

    private static string RepositoryRoot()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "BackingChain.Core.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new InvalidOperationException("repository root not found");
    }

    // A switch arm or case label on a format value, or a pattern that lists two formats ("X or Y").
    [GeneratedRegex(@"ImageFormat\.(?!Unknown\b)\w+\s*=>|case\s+ImageFormat\.\w+|ImageFormat\.\w+\)?\s+or\s+\(?ImageFormat\.")]
    private static partial Regex FormatSwitchArm();
}
