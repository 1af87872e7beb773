using System;
using System.IO;
using System.Security.Cryptography;
using System.Threading.Tasks;
using BackingChain.Editing;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Editing;

/// <summary>
/// An image judged (or planned) and then swapped for a symlink to a file outside the images' folder before the
/// write: the edit writes the file it judged or none, never the victim. The victim is a copy of the judged image,
/// so the edit's own check that the header still holds what was judged passes on it: only the identity (device
/// and inode) of the file tells them apart.
/// </summary>
public sealed class SwappedImageTests
{
    [QemuImgTheory]
    [InlineData("qcow2")]
    [InlineData("qed")]
    public async Task A_fix_applied_after_the_image_was_swapped_for_a_symlink_is_refused_and_writes_nothing(string format)
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["images"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "images/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-b", "base.raw", "-F", "raw", $"images/top.{format}");
        ImagePatches.DropBackingFormat(dir[$"images/top.{format}"]);
        File.Copy(dir[$"images/top.{format}"], dir[$"victim.{format}"]);

        TrustReport report = await new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.Default })
            .CheckAsync(dir[$"images/top.{format}"], format == "qed" ? ImageFormat.Qed : ImageFormat.Qcow2);
        BackingFormatFix fix = Assert.Single(BackingFormatFix.Plan(report));
        string judged = Swap(dir, $"images/top.{format}", $"../victim.{format}");
        string[] before = [Hash(dir[$"victim.{format}"]), Hash(judged)];

        BackingEditException refused = Assert.Throws<BackingEditException>(() => fix.Apply());

        Assert.Equal(BackingEditError.ImageReplaced, refused.Error);
        Assert.Equal(before, new[] { Hash(dir[$"victim.{format}"]), Hash(judged) });
        Assert.Null(QemuImg.Info(dir.Path, $"victim.{format}", format: format)["backing-filename-format"]);
    }

    [QemuImgTheory]
    [InlineData("qcow2")]
    [InlineData("qed")]
    public async Task A_relocation_applied_after_the_image_was_swapped_for_a_symlink_is_refused_and_writes_nothing(string format)
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["old/base"]);
        Directory.CreateDirectory(dir["old/vm"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "old/base/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-u", "-b", dir["old/base/base.raw"], "-F", "raw", $"old/vm/top.{format}", "1M");
        Directory.Move(dir["old"], dir["new"]);
        File.Copy(dir[$"new/vm/top.{format}"], dir[$"victim.{format}"]);

        BackingRelocation plan = BackingRelocation.Plan(dir[$"new/vm/top.{format}"], dir["old"], dir["new"]);
        Assert.True(plan.ChangesBackingName);
        string judged = Swap(dir, $"new/vm/top.{format}", $"../../victim.{format}");
        string[] before = [Hash(dir[$"victim.{format}"]), Hash(judged)];

        BackingEditException refused = Assert.Throws<BackingEditException>(() => plan.Apply());

        Assert.Equal(BackingEditError.ImageReplaced, refused.Error);
        Assert.Equal(before, new[] { Hash(dir[$"victim.{format}"]), Hash(judged) });
    }

    [QemuImgTheory]
    [InlineData("qcow2")]
    [InlineData("qed")]
    public void A_rebase_writes_through_the_descriptor_it_read_even_when_the_name_is_swapped_before_the_write(string format)
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["images"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", format, "-u", "-b", "old.raw", "-F", "raw", $"images/top.{format}", "1M");
        File.Copy(dir[$"images/top.{format}"], dir[$"victim.{format}"]);
        string victim = Hash(dir[$"victim.{format}"]);
        string? judged = null;

        // The header was read through the descriptor; the name is swapped before the first write.
        BackingFileEditor.SetBackingFile(dir[$"images/top.{format}"], "new.raw", "raw", handle =>
        {
            judged = Swap(dir, $"images/top.{format}", $"../victim.{format}");
            return FileHeaderWriter.Create(handle);
        });

        Assert.Equal(victim, Hash(dir[$"victim.{format}"]));
        Assert.Equal("new.raw", (string?)QemuImg.Info(dir.Path, Path.GetRelativePath(dir.Path, judged!), format: format)["backing-filename"]);
    }

    /// <summary>Moves the image aside (where its judged bytes stay) and puts a symlink to <paramref name="target"/> in its place; returns where the image went.</summary>
    private static string Swap(ScratchDirectory dir, string image, string target)
    {
        string aside = dir[image] + ".judged";
        File.Move(dir[image], aside);
        File.CreateSymbolicLink(dir[image], target);
        return aside;
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}
