using System.Threading.Tasks;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Libvirt;

/// <summary>Every format libvirt knows that qemu-img can make, as a disk's format and as a recorded backing format: <c>domain</c>'s prediction against a running libvirtd (see <see cref="LibvirtLiveCases"/>).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LibvirtLiveFormatTests
{
    public static TheoryData<string> Cases => LibvirtLiveCases.Half(0);

    [LibvirtTheory]
    [MemberData(nameof(Cases))]
    public Task Prediction_is_what_libvirtd_does(string name) => LibvirtLiveCases.RunAsync(name);
}
