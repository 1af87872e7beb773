using System.IO;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using BackingChain.Editing;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Editing;

/// <summary>The relocation planner of the library: names after a move, the plan as a dry run, and a plan gone stale.</summary>
public sealed class BackingRelocationTests
{
    [Theory]
    [InlineData("/a/base.raw", "/keep/top.qcow2", "/keep/top.qcow2", "/a", "/b", "/b/base.raw")] // only the backing image moved
    [InlineData("../a/base.raw", "/keep/top.qcow2", "/keep/top.qcow2", "/a", "/b", "/b/base.raw")]
    [InlineData("../other/base.raw", "/keep/top.qcow2", "/keep/top.qcow2", "/a", "/b", "../other/base.raw")] // neither moved
    [InlineData("/a/x/base.raw", "/a/y/top.qcow2", "/b/y/top.qcow2", "/a", "/b", "../x/base.raw")] // both moved
    public void Relocate_is_relative_only_where_image_and_backing_moved_together(string stored, string oldImage, string newImage, string oldRoot, string newRoot, string expected) =>
        Assert.Equal(expected, BackingNames.Relocate(stored, oldImage, newImage, oldRoot, newRoot));

    [Theory]
    [InlineData("/a/data.raw", "/a", "/b", "/b/data.raw")]
    [InlineData("/c/data.raw", "/a", "/b", "/c/data.raw")]
    [InlineData("data.raw", "/a", "/b", "data.raw")] // qemu opens it from the working directory: unknowable here
    public void Data_file_names_are_relocated_only_when_absolute(string stored, string oldRoot, string newRoot, string expected) =>
        Assert.Equal(expected, BackingNames.RelocateAbsolute(stored, oldRoot, newRoot));

    [QemuImgFact]
    public async Task A_plan_writes_nothing_and_its_apply_writes_the_new_name()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["old"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "old/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", dir["old/base.raw"], "-F", "raw", "old/top.qcow2");
        Directory.Move(dir["old"], dir["new"]);
        string before = CliRelocateTests.Hash(dir["new/top.qcow2"]);

        BackingRelocation plan = BackingRelocation.Plan(dir["new/top.qcow2"], dir["old"], dir["new"]);

        Assert.Equal(before, CliRelocateTests.Hash(dir["new/top.qcow2"]));
        Assert.Equal(dir["old/base.raw"], plan.StoredName);
        Assert.Equal("base.raw", plan.NewName);
        Assert.Equal("raw", plan.BackingFormat);
        Assert.True(plan.ChangesBackingName);
        Assert.False(plan.LeavesDataFileName);

        Assert.True(plan.Apply());
        JsonNode info = QemuImg.Info(dir.Path, "new/top.qcow2", backingChain: true);
        Assert.Equal(2, info.AsArray().Count);
        Assert.Equal("base.raw", (string)info[0]!["backing-filename"]!);
    }

    [QemuImgFact]
    public async Task A_plan_is_refused_when_the_image_changed_since()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["old"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "old/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", dir["old/base.raw"], "-F", "raw", "old/top.qcow2");
        Directory.Move(dir["old"], dir["new"]);
        BackingRelocation plan = BackingRelocation.Plan(dir["new/top.qcow2"], dir["old"], dir["new"]);
        QemuImg.Run(dir.Path, "rebase", "-u", "-b", "elsewhere.raw", "-F", "raw", "new/top.qcow2");

        BackingEditException refused = Assert.Throws<BackingEditException>(() => plan.Apply());

        Assert.Equal(BackingEditError.ImageChanged, refused.Error);
        Assert.Equal("elsewhere.raw", (string)QemuImg.Info(dir.Path, "new/top.qcow2")["backing-filename"]!);
    }
}
