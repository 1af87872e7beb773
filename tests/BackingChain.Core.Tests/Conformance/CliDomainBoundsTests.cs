using System;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml;
using BackingChain.Interop;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// One huge name costs a bounded amount: a domain document with a 15 MiB (or a 9 MiB, under the document cap)
/// <c>&lt;source file&gt;</c> is one line of error, with the CLI's peak resident set (read by <c>/usr/bin/time</c>) a
/// small multiple of its baseline, and nothing on standard output. Names of the longest size the kernel opens pass.
/// </summary>
public sealed class CliDomainBoundsTests
{
    private const long MaxPeakKiB = 200 * 1024;

    [GnuTimeTheory]
    [InlineData(15 * 1024 * 1024)]
    [InlineData(9 * 1024 * 1024)]
    public void A_huge_source_file_costs_bounded_memory_and_output(int length)
    {
        using var dir = new ScratchDirectory();
        string document = dir["huge.xml"];
        File.WriteAllText(document, "<domain type='kvm'><name>g</name><devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/"
            + new string('a', length) + "'/><target dev='vda'/></disk></devices></domain>");

        ProcessResult result = ProcessRunner.Run(
            "/usr/bin/time",
            ["-f", "peak-kib %M", "dotnet", Path.Combine(AppContext.BaseDirectory, "backing-chain.dll"), "domain", "--output", "json", document],
            dir.Path);

        string[] errors = result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        long peak = long.Parse(errors.Last(l => l.StartsWith("peak-kib ", StringComparison.Ordinal))["peak-kib ".Length..], System.Globalization.CultureInfo.InvariantCulture);
        string[] cli = errors.Where(l => l.StartsWith("backing-chain: ", StringComparison.Ordinal)).ToArray();
        Assert.Equal(1, result.ExitCode);
        Assert.Equal(string.Empty, result.StandardOutput);
        string line = Assert.Single(cli);
        Assert.True(line.Length < 512, line[..Math.Min(line.Length, 512)]);
        Assert.True(peak < MaxPeakKiB, $"peak resident set {peak} KiB");
    }

    [Theory]
    [InlineData(LibvirtXmlParser.MaxAttributeBytes, true)]
    [InlineData(LibvirtXmlParser.MaxAttributeBytes + 1, false)]
    public void Names_up_to_path_max_are_read_and_longer_ones_refused_without_being_repeated(int bytes, bool accepted)
    {
        // Two-byte characters: the cap is on UTF-8 bytes, not on characters.
        string name = "/" + new string('\u00e9', (bytes - 1) / 2) + new string('a', (bytes - 1) % 2);
        Assert.Equal(bytes, Encoding.UTF8.GetByteCount(name));
        foreach (string disk in (string[])[
            $"<disk type='file'><driver type='raw'/><source file='{name}'/><backingStore/></disk>",
            $"<disk type='block'><driver type='raw'/><source dev='{name}'/><backingStore/></disk>",
            $"<disk type='network'><driver type='raw'/><source protocol='http' name='{name}'><host name='h'/></source><backingStore/></disk>",
            $"<disk type='file'><driver type='raw'/><source file='/x'/><backingStore type='file'><format type='raw'/><source file='{name}'/><backingStore/></backingStore></disk>",
            $"<disk type='file'><driver type='raw'/><source file='/x'/><source file='{name}'/><backingStore/></disk>"])
        {
            using var stream = new MemoryStream(Encoding.UTF8.GetBytes(disk));
            if (accepted)
            {
                Assert.Single(LibvirtDomainReader.Read(stream));
            }
            else
            {
                XmlException error = Assert.ThrowsAny<XmlException>(() => LibvirtDomainReader.Read(stream));
                Assert.Contains(bytes.ToString(System.Globalization.CultureInfo.InvariantCulture) + " bytes", error.Message, StringComparison.Ordinal);
                Assert.DoesNotContain(name, error.Message, StringComparison.Ordinal);
            }
        }
    }

    [Theory]
    [InlineData("check", "--name")]
    [InlineData("check", "--trust-root")]
    [InlineData("domain", "--trust-url")]
    [InlineData("info", "")]
    public void A_huge_argument_is_a_short_usage_error(string command, string option)
    {
        using var dir = new ScratchDirectory();
        string huge = "/" + new string('n', 100 * 1024);
        string[] arguments = option.Length == 0 ? [command, huge] : [command, option, huge, "-"];

        (int exit, string output, string error) = CliRunner.Run(dir.Path, arguments);

        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, output);
        Assert.True(error.Length < 1024, error[..Math.Min(error.Length, 1024)]);
        Assert.Contains("longer than", error, StringComparison.Ordinal);
    }
}
