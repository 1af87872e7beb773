using System.Text.Json.Nodes;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// Images made by qemu-img at test time; our <c>info --output json</c> must equal qemu-img's field by field.
/// </summary>
public sealed class Qcow2ConformanceTests
{
    public static TheoryData<string, string> CreateOptions => new()
    {
        { "compat 0.10", "compat=0.10" },
        { "compat 1.1", "compat=1.1" },
        { "cluster 512", "cluster_size=512" },
        { "cluster 4k", "cluster_size=4096" },
        { "cluster 16k", "cluster_size=16384" },
        { "cluster 64k", "cluster_size=65536" },
        { "cluster 256k", "cluster_size=262144" },
        { "cluster 1M", "cluster_size=1048576" },
        { "cluster 2M", "cluster_size=2097152" },
        { "lazy refcounts", "lazy_refcounts=on" },
        { "extended l2", "extended_l2=on" },
        { "extended l2 16k", "extended_l2=on,cluster_size=16384" },
        { "zstd", "compression_type=zstd" },
        { "refcount 1", "refcount_bits=1" },
        { "refcount 8", "refcount_bits=8" },
        { "refcount 64", "refcount_bits=64" },
        { "everything", "extended_l2=on,lazy_refcounts=on,compression_type=zstd,refcount_bits=64" },
        { "v2 refcount 16", "compat=0.10,refcount_bits=16" },
        { "data file", "data_file=data.raw" },
        { "data file raw", "data_file=data.raw,data_file_raw=on" },
    };

    [QemuImgTheory]
    [MemberData(nameof(CreateOptions))]
    public void Info_matches_qemu_img_for_created_images(string label, string options)
    {
        _ = label;
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", options, "image.qcow2", "1M");

        AssertSameInfo(dir.Path, "image.qcow2", backingChain: false);
    }

    [QemuImgTheory]
    [InlineData("1")]
    [InlineData("1000")]
    [InlineData("1048577")]
    [InlineData("256T")]
    [InlineData("16T")]
    public void Info_matches_qemu_img_for_odd_and_huge_sizes(string size)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "image.qcow2", size);

        AssertSameInfo(dir.Path, "image.qcow2", backingChain: false);
    }

    [QemuImgFact]
    public void Info_matches_qemu_img_for_a_huge_image_with_2M_clusters()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", "image.qcow2", "1E");

        AssertSameInfo(dir.Path, "image.qcow2", backingChain: false);
    }

    internal static void AssertSameInfo(string workingDirectory, string file, bool backingChain, string? format = null)
    {
        JsonNode expected = QemuImg.Info(workingDirectory, file, backingChain, format);
        var args = new System.Collections.Generic.List<string> { "info", "--output", "json" };
        if (backingChain)
        {
            args.Add("--backing-chain");
        }

        if (format is not null)
        {
            args.Add("-f");
            args.Add(format);
        }

        args.Add(file);
        (int exit, string stdout, string stderr) = CliRunner.Run(workingDirectory, [.. args]);
        Assert.True(exit == 0, $"backing-chain failed ({exit}): {stderr}");
        System.Collections.Generic.List<string> differences = JsonComparison.Differences(expected, JsonNode.Parse(stdout));
        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }
}
