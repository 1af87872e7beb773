using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using BackingChain.Chain;
using BackingChain.Editing;
using BackingChain.Tests.Infrastructure;
using BackingChain.Walk;

namespace BackingChain.Tests.Editing;

/// <summary>
/// The QED rebase interrupted after any write: as qemu-img reads it and as this library reads it back, the image
/// holds the old (name, format) or the new one. QED records only "raw" (its no-probe bit), so a half-done edit must
/// never leave the raw bit beside a name that was not recorded with it.
/// </summary>
public sealed class InterruptedQedRebaseTests
{
    public static TheoryData<string, string, string> Cases => new()
    {
        // create options, new name, new format
        { "backing_file=old.raw,backing_fmt=raw", "a-much-longer-backing-name-than-before.raw", "raw" },
        { "backing_file=old-and-rather-long-name.raw,backing_fmt=raw", "n.raw", "raw" },
        { "backing_file=old.raw,backing_fmt=raw", "new.qcow2", "qcow2" },
        { "backing_file=old.qcow2,backing_fmt=qcow2", "new.raw", "raw" },
        { "", "base.raw", "raw" },

        // No room for the parked copy of the name in a 4 KiB header: the single-write path.
        { "cluster_size=4096,backing_file=old.raw,backing_fmt=raw", new string('n', 2500) + ".raw", "raw" },
    };

    [QemuImgTheory]
    [MemberData(nameof(Cases))]
    public void Failing_each_write_in_turn_leaves_an_allowed_state(string options, string name, string format)
    {
        using var dir = new ScratchDirectory();
        var create = new List<string> { "create", "-q", "-f", "qed", "-u" };
        if (options.Length > 0)
        {
            create.AddRange(["-o", options]);
        }

        create.AddRange(["original.qed", "1M"]);
        QemuImg.Run(dir.Path, [.. create]);
        (string? Name, string? Format) old = Backing(dir, "original.qed");

        // How many writes a complete edit makes, and what it records (QED cannot record qcow2: no format).
        File.Copy(dir["original.qed"], dir["complete.qed"]);
        var counting = new InterruptedRebaseTests.FailingWriter(int.MaxValue);
        BackingFileEditor.SetBackingFile(dir["complete.qed"], name, format, counting.Attach);
        (string? Name, string? Format) done = Backing(dir, "complete.qed");
        Assert.Equal((name, format == "raw" ? "raw" : null), done);
        Assert.True(counting.Writes >= 1);

        for (int failAt = 0; failAt < counting.Writes; failAt++)
        {
            string image = $"fail-{failAt}.qed";
            File.Copy(dir["original.qed"], dir[image]);
            var failing = new InterruptedRebaseTests.FailingWriter(failAt);

            Assert.Throws<IOException>(() => BackingFileEditor.SetBackingFile(dir[image], name, format, failing.Attach));

            (string? Name, string? Format) state = Backing(dir, image);
            bool allowed = state == old || state == done;
            Assert.True(allowed, $"write {failAt + 1} of {counting.Writes} failed and left ({state.Name}, {state.Format}); old ({old.Name}, {old.Format}), new ({done.Name}, {done.Format})");
        }
    }

    /// <summary>The backing name and format as qemu-img reads them; this library must read the same.</summary>
    private static (string? Name, string? Format) Backing(ScratchDirectory dir, string image)
    {
        JsonNode info = QemuImg.Info(dir.Path, image, format: "qed");
        (string? Name, string? Format) qemu = ((string?)info["backing-filename"], (string?)info["backing-filename-format"]);

        ChainLayer top = new ImageChainResolver().Resolve(dir[image], ImageFormat.Qed).Layers[0];
        ImageReference? backing = top.References.FirstOrDefault(r => r.Role == ReferenceRole.BackingFile);
        Assert.Equal(qemu, (backing?.StoredName, backing?.RecordedFormat));
        return qemu;
    }
}
