using System;
using System.IO;
using BackingChain.Detection;
using BackingChain.Formats.Luks;
using BackingChain.Formats.Qcow2;

namespace BackingChain.Tests.Performance;

/// <summary>
/// The parse path allocates nothing (docs/design.md, Formats/): checked on a warm call with
/// <see cref="GC.GetAllocatedBytesForCurrentThread"/>, so a regression fails here and not only in a
/// benchmark report. Nothing is timed. A new format adds one test over its fixture
/// (benchmarks/BackingChain.Core.Benchmarks/Fixtures/, made by make-fixtures.sh with qemu-img).
/// </summary>
public sealed class ZeroAllocationTests
{
    private const int Calls = 1000;

    private static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    /// <summary>Bytes allocated on this thread by <see cref="Calls"/> calls of <paramref name="call"/> after a warm-up call.</summary>
    private static long AllocatedBy(Func<bool> call)
    {
        Assert.True(call()); // warm: JIT, static constructors, and the call must succeed
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool all = true;
        for (int i = 0; i < Calls; i++)
        {
            all &= call();
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(all);
        return allocated;
    }

    [Fact]
    public void Qcow2_v3_header_with_backing_name_and_extensions_parses_without_allocating()
    {
        byte[] data = Fixture("qcow2-v3.head");

        long allocated = AllocatedBy(() =>
            Qcow2Header.TryParse(data, out Qcow2Header header, out _) && header.HasBackingFile && header.HasBackingFormat);

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Qcow2_header_of_a_file_shorter_than_the_fixed_header_is_judged_without_allocating()
    {
        // The zero-padded path: the fixed header reads as zeros past the end, the extensions are cut off.
        byte[] data = Fixture("qcow2-v3.head").AsSpan(0, 104).ToArray();

        long allocated = AllocatedBy(() => Qcow2Header.Read(data, dataReachesEndOfFile: true, out _, out _) == HeaderError.Truncated);

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Luks1_header_parses_without_allocating()
    {
        byte[] data = Fixture("luks1.head");

        long allocated = AllocatedBy(() => Luks1Header.TryParse(data, out _, out _));

        Assert.Equal(0, allocated);
    }

    [Theory]
    [InlineData("qcow2-v3.head")]
    [InlineData("qcow1.head")]
    [InlineData("qed.head")]
    [InlineData("vmdk-sparse.head")]
    [InlineData("vmdk-desc.head")]
    [InlineData("luks1.head")]
    [InlineData("parallels.head")]
    [InlineData("vdi.head")]
    [InlineData("vhd-dynamic.head")]
    [InlineData("vhdx.head")]
    [InlineData("raw.head")]
    public void Probe_does_not_allocate(string fixture)
    {
        // Every registered format scores the head, so this covers each reader's probe as formats land.
        byte[] head = Fixture(fixture);
        ImageFormat first = ImageFormatDetector.Detect(head, fixture, 1L << 20);

        long allocated = AllocatedBy(() => ImageFormatDetector.Detect(head, fixture, 1L << 20) == first);

        Assert.Equal(0, allocated);
    }
}
