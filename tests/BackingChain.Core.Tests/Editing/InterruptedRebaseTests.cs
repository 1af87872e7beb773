using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json.Nodes;
using BackingChain.Editing;
using BackingChain.Tests.Infrastructure;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Tests.Editing;

/// <summary>
/// A header edit interrupted after any write leaves, as qemu-img reads it, the old (name, format) or the new one:
/// never a name with the other's format, nor a name with no recorded format (which makes qemu probe the backing
/// image, the very thing recording a format prevents). The one write that switches from the old state to the new
/// must lie within one 512-byte sector wherever the layout allows it, so that a power loss cannot tear it.
/// </summary>
public sealed class InterruptedRebaseTests
{
    public static TheoryData<string, string, bool, string, string, bool> Cases => new()
    {
        // image format, create options, drop the recorded format first, new name, new format, switch within one sector
        { "qcow2", "cluster_size=4096,backing_file=old-and-long-name.qcow2,backing_fmt=qcow2", false, "n.raw", "raw", true },
        { "qcow2", "backing_file=old.raw,backing_fmt=raw", false, "a-much-longer-backing-name-than-before.qcow2", "qcow2", true },
        { "qcow2", "backing_file=old.raw,backing_fmt=raw", false, "old.raw", "qcow2", true },
        { "qcow2", "backing_file=old.qcow2,backing_fmt=qcow2", false, "new.qcow2", "qcow2", true },
        { "qcow2", "backing_file=../old/place/of/base.qcow2,backing_fmt=qcow2", false, "/new/place/of/base.qcow2", "qcow2", true },
        { "qcow2", "compat=0.10,backing_file=old.vmdk,backing_fmt=vmdk", false, "other.raw", "raw", true },
        { "qcow2", "", false, "base.raw", "raw", true },

        // check --fix: the same name gains the format it lacked (appended at the old end marker).
        { "qcow2", "backing_file=base.raw,backing_fmt=raw", true, "base.raw", "raw", true },
        { "qcow2", "compat=0.10,backing_file=base.raw,backing_fmt=raw", true, "base.raw", "raw", true },
        { "qcow2", "lazy_refcounts=on,backing_file=a-longer-base-name.qcow2,backing_fmt=qcow2", true, "a-longer-base-name.qcow2", "qcow2", true },

        // An area past the first sector (an external data file name before the feature table): qemu's order would
        // shift it all; the format appended at the old end marker is the one 8-byte switch. With a new name too, the
        // pointer (first sector) and that end marker (second) change together: one write across sectors.
        { "qcow2", "data_file=data-file-with-a-name-long-enough.raw,backing_file=base.raw,backing_fmt=raw", true, "base.raw", "raw", true },
        { "qcow2", "data_file=data-file-with-a-name-long-enough.raw,backing_file=base.raw,backing_fmt=raw", true, "other-base.qcow2", "qcow2", false },

        // A new name and a format the old header lacked, or a format whose padded length differs, with the area
        // past the first sector: one write across sectors (docs/limits.md), still all or nothing for a failure.
        { "qcow2", "backing_file=old.raw,backing_fmt=raw", true, "new-name.qcow2", "qcow2", false },
        { "qcow2", "backing_file=old.raw,backing_fmt=raw", false, "old.hdd", "parallels", false },

        { "qed", "backing_file=old.raw,backing_fmt=raw", false, "a-much-longer-backing-name-than-before.raw", "raw", true },
        { "qed", "backing_file=old-and-rather-long-name.raw,backing_fmt=raw", false, "n.raw", "raw", true },
        { "qed", "backing_file=old.qcow2,backing_fmt=qcow2", false, "new.raw", "raw", true },
        { "qed", "", false, "base.raw", "raw", true },
        { "qed", "backing_file=base.raw,backing_fmt=raw", true, "base.raw", "raw", true },
        { "qed", "backing_file=old.raw,backing_fmt=raw", false, new string('n', 600) + ".raw", "raw", true },

        // No room for the parked copy of the name in a 4 KiB QED header: qemu's single write, across sectors.
        { "qed", "cluster_size=4096,backing_file=old.raw,backing_fmt=raw", false, new string('n', 2500) + ".raw", "raw", false },
    };

    [QemuImgTheory]
    [MemberData(nameof(Cases))]
    public void Failing_each_write_in_turn_leaves_the_old_or_the_new_state(string format, string options, bool dropFormat, string name, string newFormat, bool oneSector)
    {
        using var dir = new ScratchDirectory();
        string original = "original." + format;
        MakeImage(dir, format, options, dropFormat, original);
        (string? Name, string? Format) old = Backing(dir, original, format);

        // How many writes a complete edit makes, where they go, and the state it ends in.
        string complete = "complete." + format;
        File.Copy(dir[original], dir[complete]);
        var counting = new FailingWriter(int.MaxValue);
        BackingFileEditor.SetBackingFile(dir[complete], name, newFormat, counting.Attach);
        (string? Name, string? Format) done = Backing(dir, complete, format);
        Assert.Equal((name, format == "qed" && newFormat != "raw" ? null : newFormat), done);
        AssertCleanAlone(dir, complete, format);

        // The state after k writes, k = 0 … all: old up to the switch, new from it on.
        var states = new List<(string? Name, string? Format)>();
        for (int failAt = 0; failAt < counting.Writes; failAt++)
        {
            string image = $"fail-{failAt}.{format}";
            File.Copy(dir[original], dir[image]);
            Assert.Throws<IOException>(() => BackingFileEditor.SetBackingFile(dir[image], name, newFormat, new FailingWriter(failAt).Attach));

            (string? Name, string? Format) state = Backing(dir, image, format);
            Assert.True(state == old || state == done, $"write {failAt + 1} of {counting.Writes} failed and left ({state.Name}, {state.Format}); old ({old.Name}, {old.Format}), new ({done.Name}, {done.Format})");
            AssertCleanAlone(dir, image, format);
            states.Add(state);
        }

        states.Add(done);
        int switchAt = states.FindLastIndex(s => s == old);
        Assert.True(switchAt < states.Count - 1 && states.FindIndex(switchAt + 1, s => s == old) < 0, "the state went back to the old one after the switch");
        if (old != done && oneSector)
        {
            (long offset, int length) = counting.Written[switchAt];
            Assert.True(offset / 512 == (offset + length - 1) / 512, $"the switching write {switchAt + 1} ({length} bytes at {offset}) spans sectors");
        }
    }

    /// <summary>An image made by qemu-img; with <paramref name="dropFormat"/>, its backing format removed (which qemu-img 7.2 no longer makes).</summary>
    internal static void MakeImage(ScratchDirectory dir, string format, string options, bool dropFormat, string image)
    {
        var create = new List<string> { "create", "-q", "-f", format, "-u" };
        if (options.Length > 0)
        {
            create.AddRange(["-o", options]);
        }

        create.AddRange([image, "1M"]);
        QemuImg.Run(dir.Path, [.. create]);
        if (dropFormat)
        {
            ImagePatches.DropBackingFormat(dir[image]);
            Assert.Null(QemuImg.Info(dir.Path, image, format: format)["backing-filename-format"]);
        }
    }

    /// <summary><c>qemu-img check</c> of the image alone (its backing file, which the tests do not make, not opened) finds no error.</summary>
    internal static void AssertCleanAlone(ScratchDirectory dir, string image, string format)
    {
        var options = new JsonObject
        {
            ["driver"] = format,
            ["file"] = new JsonObject { ["driver"] = "file", ["filename"] = image },
            ["backing"] = null,
        };
        (int exit, string stdout, string stderr) = QemuImg.TryRun(dir.Path, "check", "json:" + options.ToJsonString());
        Assert.True(exit == 0, $"qemu-img check {image}: {stdout}{stderr}");
    }

    /// <summary>The backing name and format as qemu-img reads them.</summary>
    internal static (string? Name, string? Format) Backing(ScratchDirectory dir, string image, string format)
    {
        JsonNode info = QemuImg.Info(dir.Path, image, format: format);
        return ((string?)info["backing-filename"], (string?)info["backing-filename-format"]);
    }

    /// <summary>Performs the writes before the <c>failAt</c>-th (0-based) for real, then fails like an I/O error.</summary>
    internal sealed class FailingWriter(int failAt)
    {
        public int FailAt { get; } = failAt;

        public int Writes => Written.Count;

        /// <summary>Where each write made went.</summary>
        public List<(long Offset, int Length)> Written { get; } = [];

        public IHeaderWriter Attach(SafeFileHandle handle) => new Writer(this, FileHeaderWriter.Create(handle));

        private sealed class Writer(FailingWriter owner, IHeaderWriter inner) : IHeaderWriter
        {
            public void Write(long offset, ReadOnlySpan<byte> data)
            {
                if (owner.Writes == owner.FailAt)
                {
                    throw new IOException("Input/output error (injected)");
                }

                inner.Write(offset, data);
                owner.Written.Add((offset, data.Length));
            }
        }
    }
}
