using System.IO;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;

namespace BackingChain.Tests.Interop;

public sealed class QemuImgRebaseCommandTests
{
    [Theory]
    [InlineData("base.qcow2", "base.qcow2")]
    [InlineData("/var/lib/images/base-1.2_x.qcow2", "/var/lib/images/base-1.2_x.qcow2")]
    [InlineData("with space.qcow2", "'with space.qcow2'")]
    [InlineData("it's.qcow2", "'it'\\''s.qcow2'")]
    [InlineData("$(rm -rf ~).qcow2", "'$(rm -rf ~).qcow2'")]
    [InlineData("", "''")]
    public void Quotes_for_a_posix_shell(string argument, string expected) =>
        Assert.Equal(expected, QemuImgRebaseCommand.Quote(argument));

    [QemuImgFact]
    public void The_command_runs_through_a_shell_and_records_the_format()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "it's base.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "it's base.qcow2", "-F", "qcow2", "top.qcow2");
        string command = QemuImgRebaseCommand.ToCommandLine(ImageFormat.Qcow2, ImageFormat.Qcow2, "it's base.qcow2", "top.qcow2");

        ProcessResult shell = ProcessRunner.Run("sh", ["-c", command], dir.Path);

        Assert.Equal(0, shell.ExitCode);
        Assert.Equal("it's base.qcow2", (string)QemuImg.Info(dir.Path, "top.qcow2")["backing-filename"]!);
        Assert.True(File.Exists(dir["top.qcow2"]));
    }

    [QemuImgTheory]
    [InlineData(ImageFormat.Qcow2, ImageFormat.Qcow2)]
    [InlineData(ImageFormat.Qcow2, ImageFormat.Raw)]
    [InlineData(ImageFormat.Qcow, ImageFormat.Qcow2)]
    [InlineData(ImageFormat.Qcow, ImageFormat.Raw)]
    [InlineData(ImageFormat.Qed, ImageFormat.Qcow2)]
    [InlineData(ImageFormat.Qed, ImageFormat.Raw)]
    [InlineData(ImageFormat.Vmdk, ImageFormat.Qcow2)]
    [InlineData(ImageFormat.Vmdk, ImageFormat.Raw)]
    [InlineData(ImageFormat.Vpc, ImageFormat.Raw)]
    [InlineData(ImageFormat.Raw, ImageFormat.Raw)]
    public void A_format_can_record_a_backing_format_exactly_when_qemu_img_rebase_records_it(ImageFormat format, ImageFormat backingFormat)
    {
        using var dir = new ScratchDirectory();
        string name = format.GetQemuName();
        string backingName = backingFormat.GetQemuName();
        QemuImg.Run(dir.Path, "create", "-q", "-f", backingName, "base.img", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", name, "top.img", "1M");
        (int exit, _, _) = QemuImg.TryRun(dir.Path, "rebase", "-u", "-f", name, "-F", backingName, "-b", "base.img", "top.img");
        bool recorded = exit == 0 && (string?)QemuImg.Info(dir.Path, "top.img", format: name)["backing-filename-format"] == backingName;

        Assert.Equal(recorded, QemuImgRebaseCommand.CanRecordBackingFormat(format, backingFormat));
    }
}
