using System;
using System.IO;
using BackingChain.Formats.Qcow;
using BackingChain.Formats.Qcow2;
using BackingChain.Formats.Qed;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Formats;

/// <summary>
/// A backing name cut by the end of the file: qemu reads zeros past the end and opens the image with a shorter
/// name; every reader here says Truncated instead (qemu would read zeros past the end, so a name cut there is not the name qemu uses), the same way for qcow, qcow2 and QED.
/// </summary>
public sealed class NameCutByEndOfFileTests
{
    [QemuImgFact]
    public void Qcow_qcow2_and_qed_agree()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow", "-u", "-b", "backing-name.img", "-F", "raw", "-o", "size=1M", "v1.qcow");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qed", "-u", "-b", "backing-name.img", "-F", "raw", "-o", "size=1M", "q.qed");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "backing-name.img", "-F", "raw", "-o", "size=1M", "q2.qcow2");
        byte[] qcow = File.ReadAllBytes(dir["v1.qcow"]);
        byte[] qed = File.ReadAllBytes(dir["q.qed"]);
        byte[] qcow2 = File.ReadAllBytes(dir["q2.qcow2"]);
        Assert.True(QcowHeader.TryParse(qcow, out QcowHeader v1, out _));
        Assert.Equal("backing-name.img", v1.GetBackingFileName(qcow));

        // Cut each file four bytes into its name (QED keeps its real length, so only the name is cut).
        int qcowCut = (int)v1.BackingFileOffset + 4;
        int qedCut = 64 + 4; // qemu writes the QED name right after the 64-byte header
        int qcow2Cut = (int)Qcow2Header.Parse(qcow2).BackingFileOffset + 4;

        Assert.Equal(HeaderError.Truncated, QcowHeader.Read(qcow.AsSpan(0, qcowCut), dataReachesEndOfFile: true, out _, out _));
        Assert.Equal(HeaderError.Truncated, QedHeader.Read(qed.AsSpan(0, qedCut), qed.Length, dataReachesEndOfFile: true, out _, out _));
        Assert.Equal(HeaderError.Truncated, Qcow2Header.Read(qcow2.AsSpan(0, qcow2Cut), dataReachesEndOfFile: true, out _, out _));
    }
}
