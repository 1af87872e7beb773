using BackingChain.Chain;

namespace BackingChain.Tests.Chain;

/// <summary>qemu's path rules, with examples verified against qemu-img 7.2.</summary>
public sealed class QemuPathsTests
{
    [Theory]
    [InlineData("formats-check/q2v3-over.qcow2", "q2v3.qcow2", "formats-check/q2v3.qcow2")]
    [InlineData("sub/dir/rel-dotdot.qcow2", "../../base.raw", "sub/dir/../../base.raw")]
    [InlineData("top.qcow2", "base.raw", "base.raw")]
    [InlineData("/images/top.qcow2", "/abs/base.raw", "/abs/base.raw")]
    [InlineData("/images/top.qcow2", "nbd://127.0.0.1:10809/exp", "nbd://127.0.0.1:10809/exp")]
    [InlineData("/images/top.qcow2", "file:base.raw", "file:base.raw")]
    [InlineData("/images/top.qcow2", "json:{\"driver\":\"raw\"}", "json:{\"driver\":\"raw\"}")]
    [InlineData("nbd:host:10809", "base.raw", "nbd:base.raw")]
    [InlineData("http://host/dir/top.qcow2", "base.qcow2", "http://host/dir/base.qcow2")]
    public void Combine_forms_the_full_backing_filename_as_qemu_does(string referrer, string name, string expected) =>
        Assert.Equal(expected, QemuPaths.Combine(referrer, name));

    [Fact]
    public void An_empty_name_is_no_backing_file() => Assert.Null(QemuPaths.Combine("top.qcow2", ""));

    [Theory]
    [InlineData("base.raw", ReferenceKind.RelativePath)]
    [InlineData("../base.raw", ReferenceKind.RelativePath)]
    [InlineData("dir/a:b.raw", ReferenceKind.RelativePath)]
    [InlineData("/abs/base.raw", ReferenceKind.AbsolutePath)]
    [InlineData("/abs/a:b.raw", ReferenceKind.AbsolutePath)]
    [InlineData("nbd://h/x", ReferenceKind.Protocol)]
    [InlineData("weird:name.img", ReferenceKind.Protocol)]
    [InlineData("json:{}", ReferenceKind.Json)]
    [InlineData("C:\\disks\\base.vhd", ReferenceKind.WindowsPath)]
    [InlineData("c:/disks/base.vhd", ReferenceKind.WindowsPath)]
    [InlineData("\\\\server\\share\\base.vhd", ReferenceKind.WindowsPath)]
    [InlineData("..\\base.vhd", ReferenceKind.WindowsPath)]
    public void Classify_names(string name, ReferenceKind kind) => Assert.Equal(kind, QemuPaths.Classify(name));

    [Theory]
    [InlineData("nbd://h/x", true)]
    [InlineData("a/b:c", false)]
    [InlineData("a:b/c", true)]
    [InlineData("plain", false)]
    public void Path_has_protocol_when_a_colon_comes_before_any_slash(string name, bool expected) =>
        Assert.Equal(expected, QemuPaths.HasProtocol(name));

    [Theory]
    [InlineData("dir/top.qcow2", "a:b.raw", ReferenceRole.ExternalDataFile, ReferenceKind.RelativePath, "dir/a:b.raw")]
    [InlineData("dir/top.vmdk", "json:{}", ReferenceRole.Extent, ReferenceKind.RelativePath, "dir/json:{}")]
    [InlineData("dir/top.qcow2", "/abs/d.raw", ReferenceRole.ExternalDataFile, ReferenceKind.AbsolutePath, "/abs/d.raw")]
    [InlineData("dir/top.qcow2", "a:b.raw", ReferenceRole.BackingFile, ReferenceKind.Protocol, "a:b.raw")]
    public void Data_file_and_extent_names_are_literal_file_names(string referrer, string name, ReferenceRole role, ReferenceKind kind, string fullName)
    {
        ImageReference reference = QemuPaths.ToReference(referrer, name, role, null);

        Assert.Equal(kind, reference.Kind);
        Assert.Equal(fullName, reference.FullName);
    }
}
