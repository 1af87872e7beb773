using System;
using System.IO;
using System.Linq;
using System.Xml.Linq;
using BackingChain.Chain;
using BackingChain.Interop;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Interop;

/// <summary>
/// The &lt;disk&gt; element for chains made by qemu-img: valid against libvirt's schema, and layer by layer
/// what <c>qemu-img info --backing-chain</c> says the chain is.
/// </summary>
[Collection(WorkingDirectoryCollection.Name)]
public sealed class LibvirtDiskXmlTests
{
    [LibvirtSchemaFact]
    public void Xml_for_a_three_layer_chain_is_valid_and_matches_qemu_img()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["base"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base/base.raw", "-F", "raw", "mid.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");

        string xml = InDirectory(dir.Path, () => LibvirtDiskXml.ToXml(TrustEvaluator.Evaluate(Resolve("top.qcow2", ImageFormat.Qcow2))));

        (int exit, string output) = VirtXmlValidate.ValidateDisk(dir.Path, xml);
        Assert.True(exit == 0, output + "\n" + xml);
        AssertMatchesQemuImg(dir.Path, "top.qcow2", XElement.Parse(xml), "vda", "virtio");
    }

    [LibvirtSchemaFact]
    public void Xml_escapes_names_and_folds_dot_dot_only_when_it_is_the_same_file()
    {
        using var dir = new ScratchDirectory();
        string odd = "a&b'c\"d<e>";
        Directory.CreateDirectory(dir[odd]);
        Directory.CreateDirectory(dir["sub"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", $"{odd}/base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", $"../{odd}/base.raw", "-F", "raw", "sub/top.qcow2");

        string xml = InDirectory(dir.Path, () => LibvirtDiskXml.ToXml(TrustEvaluator.Evaluate(Resolve("sub/top.qcow2", ImageFormat.Qcow2)), "sdb"));

        (int exit, string output) = VirtXmlValidate.ValidateDisk(dir.Path, xml);
        Assert.True(exit == 0, output + "\n" + xml);
        XElement disk = XElement.Parse(xml);
        AssertMatchesQemuImg(dir.Path, "sub/top.qcow2", disk, "sdb", "scsi");
        Assert.Equal(Path.Combine(dir.Path, odd, "base.raw"), disk.Element("backingStore")!.Element("source")!.Attribute("file")!.Value);
    }

    [QemuImgFact]
    public void Incomplete_chain_is_refused_with_the_reason()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");
        File.Delete(dir["base.raw"]);

        ImageChain chain = InDirectory(dir.Path, () => Resolve("top.qcow2", ImageFormat.Qcow2));

        Assert.False(LibvirtDiskXml.CanWrite(TrustEvaluator.Evaluate(chain), out string? reason));
        Assert.Contains("ReferenceMissing", reason, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => LibvirtDiskXml.ToXml(TrustEvaluator.Evaluate(chain)));
    }

    [QemuImgFact]
    public void Probed_layer_with_an_untrusted_backing_is_refused()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");

        // Resolved as qemu-img would (following a probed top), but judged by the default policy.
        ImageChain chain = InDirectory(dir.Path, () => new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible }).Resolve("top.qcow2"));

        Assert.True(chain.IsComplete);
        Assert.False(LibvirtDiskXml.CanWrite(TrustEvaluator.Evaluate(chain), out string? reason));
        Assert.Contains("ProbedWithUntrustedReferences", reason, StringComparison.Ordinal);
    }

    [QemuImgFact]
    public void Data_file_cannot_be_described_and_is_refused()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-o", "data_file=data.raw", "top.qcow2", "1M");

        ImageChain chain = InDirectory(dir.Path, () => Resolve("top.qcow2", ImageFormat.Qcow2));

        Assert.False(LibvirtDiskXml.CanWrite(TrustEvaluator.Evaluate(chain), out string? reason));
        Assert.Contains("data.raw", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_target_is_an_argument_error()
    {
        using var dir = new ScratchDirectory();
        File.WriteAllBytes(dir["disk.raw"], new byte[4096]);
        ImageChain chain = Resolve(dir["disk.raw"], ImageFormat.Raw);

        Assert.Throws<ArgumentException>(() => LibvirtDiskXml.ToXml(TrustEvaluator.Evaluate(chain), "vd a"));
        XElement disk = XElement.Parse(LibvirtDiskXml.ToXml(TrustEvaluator.Evaluate(chain)));
        Assert.Equal(["driver", "source", "backingStore", "target"], disk.Elements().Select(e => e.Name.LocalName));
        Assert.True(disk.Element("backingStore")!.IsEmpty);
    }

    private static ImageChain Resolve(string path, ImageFormat format) => new ImageChainResolver().Resolve(path, format);

    /// <summary>Walks the XML and qemu-img's view of the chain side by side.</summary>
    private static void AssertMatchesQemuImg(string workingDirectory, string file, XElement disk, string target, string bus)
    {
        var layers = QemuImg.Info(workingDirectory, file, backingChain: true).AsArray().Select(n => n!).ToList();
        Assert.Equal("disk", disk.Name.LocalName);
        Assert.Equal("file", disk.Attribute("type")?.Value);
        Assert.Equal("disk", disk.Attribute("device")?.Value);
        Assert.Equal("qemu", disk.Element("driver")?.Attribute("name")?.Value);
        Assert.Equal((string)layers[0]["format"]!, disk.Element("driver")?.Attribute("type")?.Value);
        Assert.Equal(Absolute(workingDirectory, (string)layers[0]["filename"]!), disk.Element("source")?.Attribute("file")?.Value);
        Assert.Equal(target, disk.Element("target")?.Attribute("dev")?.Value);
        Assert.Equal(bus, disk.Element("target")?.Attribute("bus")?.Value);

        XElement current = disk;
        for (int i = 1; i < layers.Count; i++)
        {
            XElement store = Assert.Single(current.Elements("backingStore"));
            Assert.Equal("file", store.Attribute("type")?.Value);
            Assert.Equal((string)layers[i]["format"]!, store.Element("format")?.Attribute("type")?.Value);
            Assert.Equal(Absolute(workingDirectory, (string)layers[i]["filename"]!), store.Element("source")?.Attribute("file")?.Value);
            current = store;
        }

        XElement terminator = Assert.Single(current.Elements("backingStore"));
        Assert.True(terminator.IsEmpty && !terminator.HasAttributes, "the chain must end in an empty <backingStore/>");
    }

    private static string Absolute(string workingDirectory, string name) => Path.GetFullPath(Path.Combine(workingDirectory, name));

    internal static T InDirectory<T>(string directory, Func<T> action)
    {
        string previous = Environment.CurrentDirectory;
        Environment.CurrentDirectory = directory;
        try
        {
            return action();
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }
    }
}

/// <summary>Tests that change the process's working directory must not run in parallel with each other.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class WorkingDirectoryCollection
{
    public const string Name = "Working directory";
}
