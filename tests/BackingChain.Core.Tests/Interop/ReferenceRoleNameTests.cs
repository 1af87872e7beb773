using BackingChain.Trust;

namespace BackingChain.Tests.Interop;

/// <summary>
/// One parent role: whatever a format calls its parent (backing file, VMDK parent hint, VHD/VHDX parent locator),
/// the report names it <c>backing-file</c>; the other two roles are the data file and the extent.
/// </summary>
public sealed class ReferenceRoleNameTests
{
    [Theory]
    [InlineData(ReferenceRole.BackingFile, "backing-file")]
    [InlineData(ReferenceRole.ExternalDataFile, "data-file")]
    [InlineData(ReferenceRole.Extent, "extent")]
    public void Each_role_has_its_stable_name(ReferenceRole role, string name) =>
        Assert.Equal(name, role.GetStableName());

    [Fact]
    public void There_are_exactly_three_roles() =>
        Assert.Equal(3, System.Enum.GetValues<ReferenceRole>().Length);
}
