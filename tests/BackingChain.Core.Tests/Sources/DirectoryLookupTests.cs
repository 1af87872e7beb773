using BackingChain.Internal;

namespace BackingChain.Tests.Sources;

/// <summary>
/// Which names the walk may look up from a descriptor of their directory: only a plain last component; a name whose
/// last part is empty, <c>.</c> or <c>..</c> is opened by its whole path, so that every answer is the one
/// <c>open(2)</c> of that path gives.
/// </summary>
public sealed class DirectoryLookupTests
{
    [Theory]
    [InlineData("/images/layer.qcow2", 8)]
    [InlineData("images/layer.qcow2", 7)]
    [InlineData("/layer.qcow2", 1)]
    [InlineData("/a/../b/layer", 8)]
    [InlineData("layer.qcow2", 0)]
    [InlineData("/images/", 0)]
    [InlineData("/images/.", 0)]
    [InlineData("/images/..", 0)]
    [InlineData("/images/..x", 8)]
    public void Only_a_plain_last_component_is_looked_up_from_its_directory(string path, int start)
    {
        Assert.Equal(start, UnixFile.LastComponentStart(path));
    }

    [Fact]
    public void The_directory_of_a_name_in_the_root_is_the_root_and_a_bare_name_has_none()
    {
        int root = UnixFile.TryOpenDirectory("/etc");
        try
        {
            Assert.True(root >= 0);
            Assert.Equal("/", UnixFile.DescriptorPath(root));
        }
        finally
        {
            UnixFile.Close(root);
        }

        Assert.Equal(-1, UnixFile.TryOpenDirectory("layer.qcow2"));
        Assert.Equal(-1, UnixFile.TryOpenDirectory("/no-such-directory-here/layer.qcow2"));
    }
}
