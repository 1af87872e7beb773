using System;
using System.IO;
using System.Runtime.InteropServices;
using BackingChain.Formats.Qcow2;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using Microsoft.Win32.SafeHandles;

namespace BackingChain.Tests.Sources;

/// <summary>
/// The walk's open, statx and pread go first through imports that do not capture errno (cheaper on every layer) and
/// are made again through the capturing ones only when they fail: the errno a caller sees must be the failed call's.
/// </summary>
public sealed class UnixFileErrnoTests
{
    [Fact]
    public void A_failed_walk_open_reports_what_File_OpenHandle_reports()
    {
        using var scratch = new ScratchDirectory();
        File.WriteAllBytes(scratch["file"], [1]);
        string[] paths = [scratch["missing"], scratch["no-dir/image"], scratch["file/child"]];
        foreach (string path in paths)
        {
            Exception expected = Assert.ThrowsAny<Exception>(() => File.OpenHandle(path).Dispose());

            // A call that sets errno to something else first, so a stale errno cannot pass for the open's.
            Marshal.SetLastPInvokeError(UnixErrors.EAGAIN);
            Exception actual = Assert.ThrowsAny<Exception>(() => FileImageSource.Reopen(path, spare: null).Dispose());

            Assert.Equal(expected.GetType(), actual.GetType());
            Assert.Equal(expected.Message, actual.Message);
        }
    }

    [Fact]
    public void A_failed_pread_leaves_its_own_errno()
    {
        using var scratch = new ScratchDirectory();
        File.WriteAllBytes(scratch["image"], new byte[4096]);
        using SafeFileHandle writeOnly = File.OpenHandle(scratch["image"], FileMode.Open, FileAccess.Write);
        Marshal.SetLastPInvokeError(UnixErrors.EAGAIN);

        int read = UnixFile.Read((int)writeOnly.DangerousGetHandle(), new byte[512], 0);

        Assert.Equal(-1, read);
        Assert.Equal(UnixErrors.EBADF, Marshal.GetLastPInvokeError());
    }

    [Fact]
    public void A_failed_statx_of_a_descriptor_leaves_its_own_errno()
    {
        Marshal.SetLastPInvokeError(UnixErrors.EAGAIN);

        bool stated = UnixFileStatus.TryGet(int.MaxValue, out _);

        Assert.False(stated);
        Assert.Equal(UnixErrors.EBADF, Marshal.GetLastPInvokeError());
    }

    [QemuImgFact]
    public void A_recorded_format_the_registry_knows_is_the_registry_s_string_and_others_are_decoded()
    {
        using var scratch = new ScratchDirectory();
        QemuImg.Run(scratch.Path, "create", "-q", "-f", "qcow2", "base.img", "1M");
        QemuImg.Run(scratch.Path, "create", "-q", "-f", "qcow2", "-b", "base.img", "-F", "qcow2", "top.img", "1M");
        byte[] bytes = File.ReadAllBytes(scratch["top.img"]);
        Assert.True(Qcow2Header.TryParse(bytes, out Qcow2Header header, out _));

        string format = header.GetBackingFormat(bytes)!;
        Assert.Equal("qcow2", format);
        Assert.Same(ImageFormat.Qcow2.GetQemuName(), format);

        // The same extension naming a driver the registry does not know: decoded as stored, a string of its own.
        int at = bytes.AsSpan(0, 4096).IndexOf("qcow2"u8);
        Assert.True(at > 0);
        bytes[at + 4] = (byte)'3';
        Assert.True(Qcow2Header.TryParse(bytes, out header, out _));
        Assert.Equal("qcow3", header.GetBackingFormat(bytes));
    }
}
