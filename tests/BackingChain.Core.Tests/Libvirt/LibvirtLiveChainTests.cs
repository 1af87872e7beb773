using System.Threading.Tasks;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Libvirt;

/// <summary>Probed formats, the header bound, data files, missing files, and chains the XML spells out: <c>domain</c>'s prediction against a running libvirtd (see <see cref="LibvirtLiveCases"/>).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LibvirtLiveChainTests
{
    public static TheoryData<string> Cases => LibvirtLiveCases.Half(1);

    [LibvirtTheory]
    [MemberData(nameof(Cases))]
    public Task Prediction_is_what_libvirtd_does(string name) => LibvirtLiveCases.RunAsync(name);
}
