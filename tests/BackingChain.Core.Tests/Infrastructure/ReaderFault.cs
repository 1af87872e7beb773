using BackingChain.Chain;
using BackingChain.Streaming;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// The walk turns a reader's unexpected exception into a malformed-header finding, so a random-input test that only
/// checks "no exception" passes over a parser bug. These asserts look behind that catch: it must not have fired.
/// </summary>
internal static class ReaderFault
{
    public static void AssertNone(ImageChain chain) =>
        Assert.True(chain.ReaderFaults == 0, $"a reader threw on bytes it did not validate (caught by the walk): {string.Join(" | ", chain.Findings)}");

    public static void AssertNone(UploadInspection inspection) => AssertNone(inspection.Report.Chain);
}
