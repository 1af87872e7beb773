using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json.Nodes;
using BackingChain.Editing;
using BackingChain.Tests.Infrastructure;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Tests.Editing;

/// <summary>
/// A rebase interrupted after any write leaves, as qemu-img reads it, the old (name, format), the new one, or a
/// name with no recorded format (probed: refused by the trust rule unless raw or trusted). Never the old name
/// with the new format, which would bless an image with a format nobody recorded for it, nor the reverse.
/// </summary>
public sealed class InterruptedRebaseTests
{
    public static TheoryData<string, string, string> Cases => new()
    {
        // create options, new name, new format
        { "cluster_size=4096,backing_file=old-and-long-name.qcow2,backing_fmt=qcow2", "n.raw", "raw" },
        { "backing_file=old.raw,backing_fmt=raw", "a-much-longer-backing-name-than-before.qcow2", "qcow2" },
        { "backing_file=old.raw,backing_fmt=raw", "old.raw", "qcow2" },
        { "backing_file=old.qcow2,backing_fmt=qcow2", "new.qcow2", "qcow2" },
        { "compat=0.10,backing_file=old.vmdk,backing_fmt=vmdk", "other.raw", "raw" },
        { "", "base.raw", "raw" },
    };

    [QemuImgTheory]
    [MemberData(nameof(Cases))]
    public void Failing_each_write_in_turn_leaves_an_allowed_state(string options, string name, string format)
    {
        using var dir = new ScratchDirectory();
        var create = new List<string> { "create", "-q", "-f", "qcow2", "-u" };
        if (options.Length > 0)
        {
            create.AddRange(["-o", options]);
        }

        create.AddRange(["original.qcow2", "1M"]);
        QemuImg.Run(dir.Path, [.. create]);
        (string? Name, string? Format) old = Backing(dir, "original.qcow2");

        // How many writes a complete edit makes.
        File.Copy(dir["original.qcow2"], dir["complete.qcow2"]);
        var counting = new FailingWriter(int.MaxValue);
        BackingFileEditor.SetBackingFile(dir["complete.qcow2"], name, format, counting.Attach);
        Assert.Equal((name, format), Backing(dir, "complete.qcow2"));
        Assert.True(counting.Writes >= 2);

        for (int failAt = 0; failAt < counting.Writes; failAt++)
        {
            string image = $"fail-{failAt}.qcow2";
            File.Copy(dir["original.qcow2"], dir[image]);
            var failing = new FailingWriter(failAt);

            Assert.Throws<IOException>(() => BackingFileEditor.SetBackingFile(dir[image], name, format, failing.Attach));

            (string? Name, string? Format) state = Backing(dir, image);
            bool allowed = state == old
                || state == (name, format)
                || (state.Format is null && (state.Name == old.Name || state.Name == name) && state.Name is not null);
            Assert.True(allowed, $"write {failAt + 1} of {counting.Writes} failed and left ({state.Name}, {state.Format}); old ({old.Name}, {old.Format}), new ({name}, {format})");
        }
    }

    /// <summary>The backing name and format as qemu-img reads them.</summary>
    private static (string? Name, string? Format) Backing(ScratchDirectory dir, string image)
    {
        JsonNode info = QemuImg.Info(dir.Path, image, format: "qcow2");
        return ((string?)info["backing-filename"], (string?)info["backing-filename-format"]);
    }

    /// <summary>Performs the writes before the <c>failAt</c>-th (0-based) for real, then fails like an I/O error.</summary>
    internal sealed class FailingWriter(int failAt)
    {
        public int FailAt { get; } = failAt;

        public int Writes { get; private set; }

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
                owner.Writes++;
            }
        }
    }
}
