using System;
using System.Diagnostics;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Editing;
using BackingChain.Tests.Infrastructure;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Tests.Editing;

/// <summary>
/// The in-place rebase and qemu see each other's image locks (qemu's OFD byte-range locks at 100 + permission
/// and 200 + permission): a running qemu-nbd makes our rebase refuse, and our edit makes qemu-img refuse.
/// </summary>
public sealed class QemuLockTests
{
    [QemuImgTheory]
    [InlineData(false, "Failed to get \"write\" lock")]
    [InlineData(true, "Failed to get \"write\" lock")]
    public async Task A_rebase_refuses_an_image_qemu_nbd_serves(bool readOnly, string message)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");
        byte[] before = File.ReadAllBytes(dir["image.qcow2"]);
        using (Process nbd = await StartQemuNbdAsync(dir, "image.qcow2", readOnly))
        {
            try
            {
                BackingEditException refused = await Assert.ThrowsAsync<BackingEditException>(
                    async () => BackingFileEditor.SetBackingFile(dir["image.qcow2"], "base.raw", "raw"));

                Assert.Equal(BackingEditError.ImageInUse, refused.Error);
                Assert.Contains(message, refused.Message, StringComparison.Ordinal);
            }
            finally
            {
                nbd.Kill();
                await nbd.WaitForExitAsync();
            }
        }

        Assert.Equal(before, File.ReadAllBytes(dir["image.qcow2"]));

        // Once qemu is gone the same edit goes through.
        Assert.True(BackingFileEditor.SetBackingFile(dir["image.qcow2"], "base.raw", "raw"));
    }

    [QemuImgFact]
    public void While_we_edit_qemu_img_cannot_open_the_image_to_write_or_without_sharing()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", "1M");

        using (SafeFileHandle held = BackingFileEditor.OpenForEdit(dir["image.qcow2"]))
        {
            (int rebaseExit, _, string rebaseError) = QemuImg.TryRun(dir.Path, "rebase", "-u", "-b", "base.raw", "-F", "raw", "image.qcow2");
            (int infoExit, _, string infoError) = QemuImg.TryRun(dir.Path, "info", "image.qcow2");
            (int sharedExit, _, _) = QemuImg.TryRun(dir.Path, "info", "-U", "image.qcow2");

            Assert.NotEqual(0, rebaseExit);
            Assert.Contains("Failed to get \"write\" lock", rebaseError, StringComparison.Ordinal);
            Assert.NotEqual(0, infoExit);
            Assert.Contains("Failed to get shared \"write\" lock", infoError, StringComparison.Ordinal);
            Assert.Equal(0, sharedExit); // -U (force share) reads anyway, as with a running VM
        }

        Assert.Equal(0, QemuImg.TryRun(dir.Path, "rebase", "-u", "-b", "base.raw", "-F", "raw", "image.qcow2").ExitCode);
    }

    /// <summary>Starts qemu-nbd on a UNIX socket and waits (bounded) until it holds the image's locks.</summary>
    internal static async Task<Process> StartQemuNbdAsync(ScratchDirectory dir, string image, bool readOnly)
    {
        var start = new ProcessStartInfo("qemu-nbd")
        {
            WorkingDirectory = dir.Path,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in (string[])["--persistent", "-f", "qcow2", "-k", dir["nbd.sock"]])
        {
            start.ArgumentList.Add(argument);
        }

        if (readOnly)
        {
            start.ArgumentList.Add("-r");
        }

        start.ArgumentList.Add(image);
        Process process = Process.Start(start)!;

        // Ready when the kernel lists qemu-nbd's lock on byte 201 of the image (the socket may appear before the
        // image is locked). A guard against a hang, not a timing.
        Assert.True(BackingChain.Internal.UnixFileStatus.TryGet(dir[image], out BackingChain.Internal.UnixFileStatus status));
        string suffix = $":{status.Inode} 201 201";
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!Array.Exists(File.ReadAllLines("/proc/locks"), line => line.Contains("OFDLCK", StringComparison.Ordinal) && line.EndsWith(suffix, StringComparison.Ordinal)))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException("qemu-nbd exited: " + await process.StandardError.ReadToEndAsync());
            }

            await Task.Delay(20, guard.Token);
        }

        return process;
    }
}
