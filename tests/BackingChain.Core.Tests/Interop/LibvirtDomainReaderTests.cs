using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Security;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using System.Xml;
using BackingChain.Interop;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;

namespace BackingChain.Tests.Interop;

/// <summary>
/// Documents written here, one per ending and per kind of drift, each valid against libvirt's domain schema; the
/// images are made by qemu-img and the expected facts come from <c>qemu-img info</c> or from the document itself.
/// </summary>
public sealed class LibvirtDomainReaderTests
{
    [LibvirtSchemaFact]
    public void Terminated_chain_is_explicit_and_nothing_is_probed()
    {
        using var dir = new ScratchDirectory();
        MakeChainWithUnrecordedFormat(dir);

        // The chain qemu-img sees, spelled out layer by layer and ended with <backingStore/>.
        var qemu = QemuImg.Info(dir.Path, dir["top.qcow"], backingChain: true).AsArray().Select(n => n!).ToList();
        var disk = new StringBuilder($"<disk type='file' device='disk'><driver name='qemu' type='{Format(qemu[0])}'/><source file='{dir["top.qcow"]}'/>");
        for (int i = 1; i < qemu.Count; i++)
        {
            disk.Append(CultureInfo($"<backingStore type='file'><format type='{Format(qemu[i])}'/><source file='{Path.GetFullPath((string)qemu[i]["filename"]!, dir.Path)}'/>"));
        }

        disk.Append("<backingStore/>").Append(string.Concat(Enumerable.Repeat("</backingStore>", qemu.Count - 1))).Append("<target dev='vda' bus='virtio'/></disk>");

        LibvirtDiskChain result = ReadValidated(dir, disk.ToString());

        Assert.Equal(qemu.Count, result.Layers.Length);
        Assert.Equal(qemu.Select(Format), result.Layers.Select(l => l.Format));
        Assert.True(result.IsTerminated);
        Assert.Null(result.ProbeStart);
        Assert.True(result.IsSafe, result.UnsafeReason);

        // Every layer is read as the XML declares it, and nothing below the last is opened.
        Assert.Equal(qemu.Count, result.Report.Layers.Length);
        Assert.All(result.Report.Layers, l => Assert.Equal(BackingChain.FormatSource.Declared, l.FormatSource));
        Assert.Empty(result.Drift);
        Assert.Equal("vda", result.Target);
    }

    [LibvirtSchemaFact]
    public void Omitted_ending_probes_from_the_last_layer_given_under_the_callers_policy()
    {
        using var dir = new ScratchDirectory();
        MakeChainWithUnrecordedFormat(dir);
        string document = $"<disk type='file' device='disk'><driver name='qemu' type='qcow'/><source file='{dir["top.qcow"]}'/><target dev='vda' bus='virtio'/></disk>";
        var qemu = QemuImg.Info(dir.Path, dir["top.qcow"], backingChain: true).AsArray().Select(n => n!).ToList();

        LibvirtDiskChain host = ReadValidated(dir, document);
        LibvirtDiskChain rooted = ReadValidated(dir, document, new TrustPolicy { TrustedRoots = [dir.Path] });

        // top.qcow records no backing format, so libvirt probes base.qcow2, which names a file: refused by the rule.
        Assert.False(host.IsTerminated);
        Assert.Equal(0, host.ProbeStart);
        Assert.Equal(dir["top.qcow"], host.Report.Layers[0].FileName);
        Assert.Equal(BackingChain.FormatSource.Declared, host.Report.Layers[0].FormatSource);
        Assert.Equal(BackingChain.FormatSource.Probed, host.Report.Layers[1].FormatSource);
        Assert.Equal(TrustReason.ProbedWithUntrustedReferences, host.Report.Layers[1].Reason);
        Assert.False(host.IsSafe);
        Assert.Contains("probed-with-untrusted-references", host.UnsafeReason, StringComparison.Ordinal);
        Assert.Empty(host.Drift);

        // Trusting the directory accepts the probe, and the walked part is the whole chain qemu-img sees; libvirt 9.0
        // itself refuses a probed image that names a backing file, whatever is trusted, so the disk is not safe.
        Assert.True(rooted.Report.IsSafe);
        Assert.False(rooted.IsSafe);
        Assert.Equal(LibvirtOutcome.Refused, rooted.Prediction.Outcome);
        Assert.Contains("format of backing image 'base.qcow2'", rooted.Prediction.Reason, StringComparison.Ordinal);
        Assert.Equal(qemu.Select(l => Path.GetFullPath((string)l["filename"]!, dir.Path)), rooted.Report.Chain.Layers.Select(l => l.FileName));
    }

    [LibvirtSchemaFact]
    public void Omitted_ending_below_explicit_layers_starts_probing_at_the_last_one()
    {
        using var dir = new ScratchDirectory();
        MakeChainWithUnrecordedFormat(dir);
        string document = $"<disk type='file' device='disk'><driver name='qemu' type='qcow'/><source file='{dir["top.qcow"]}'/>"
            + $"<backingStore type='file'><format type='qcow2'/><source file='{dir["base.qcow2"]}'/></backingStore><target dev='vda' bus='virtio'/></disk>";

        LibvirtDiskChain result = ReadValidated(dir, document);

        // base.qcow2 is declared by the XML, so the rest of the walk follows what it records: safe.
        Assert.Equal(1, result.ProbeStart);
        Assert.True(result.IsSafe, result.UnsafeReason);
        Assert.Equal(dir["base.qcow2"], result.Report.Layers[1].FileName);
        Assert.Equal(BackingChain.FormatSource.Declared, result.Report.Layers[1].FormatSource);
        Assert.Equal((string)QemuImg.Info(dir.Path, dir["base.qcow2"])["backing-filename-format"]!, result.Report.Layers[2].Format.GetQemuName());
        Assert.Equal(BackingChain.FormatSource.Recorded, result.Report.Layers[2].FormatSource);
        Assert.Empty(result.Drift);
    }

    [LibvirtSchemaFact]
    public void Missing_layer_file_is_drift()
    {
        using var dir = new ScratchDirectory();
        string document = $"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{dir["gone.raw"]}'/><backingStore/><target dev='vda' bus='virtio'/></disk>";

        LibvirtDrift drift = Assert.Single(ReadValidated(dir, document).Drift);

        Assert.Equal(LibvirtDriftKind.LayerMissing, drift.Kind);
        Assert.Equal(0, drift.LayerIndex);
        Assert.Equal(dir["gone.raw"], drift.Expected);
    }

    [LibvirtSchemaFact]
    public void Layer_that_is_not_the_declared_format_is_drift()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "disk.raw", "1M");
        string document = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["disk.raw"]}'/><backingStore/><target dev='vda' bus='virtio'/></disk>";

        LibvirtDrift drift = Assert.Single(ReadValidated(dir, document).Drift);

        Assert.Equal(LibvirtDriftKind.FormatMismatch, drift.Kind);
        Assert.Equal("qcow2", drift.Expected);
        Assert.NotEqual("qcow2", (string)QemuImg.Info(dir.Path, dir["disk.raw"])["format"]!);
    }

    [LibvirtSchemaFact]
    public void Backing_name_and_format_that_differ_from_the_xml_are_drift()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "a.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "b.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "raw", "top.qcow2");
        JsonNode info = QemuImg.Info(dir.Path, dir["top.qcow2"]);
        string document = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["top.qcow2"]}'/>"
            + $"<backingStore type='file'><format type='qcow2'/><source file='{dir["b.qcow2"]}'/><backingStore/></backingStore><target dev='vda' bus='virtio'/></disk>";

        ImmutableArray<LibvirtDrift> drift = ReadValidated(dir, document).Drift;

        LibvirtDrift name = Assert.Single(drift, d => d.Kind == LibvirtDriftKind.BackingNameMismatch);
        Assert.Equal(0, name.LayerIndex);
        Assert.Equal((string)info["backing-filename"]!, name.Actual);
        Assert.Equal(dir["b.qcow2"], name.Expected);
        LibvirtDrift format = Assert.Single(drift, d => d.Kind == LibvirtDriftKind.BackingFormatMismatch);
        Assert.Equal((string)info["backing-filename-format"]!, format.Actual);
        Assert.Equal("qcow2", format.Expected);
        Assert.Equal(2, drift.Length);
    }

    [LibvirtSchemaFact]
    public void Same_file_under_another_spelling_is_not_drift()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["sub"]);
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "../base.raw", "-F", "raw", "sub/top.qcow2");
        File.CreateSymbolicLink(dir["link.raw"], dir["base.raw"]);
        string document = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["sub/top.qcow2"]}'/>"
            + $"<backingStore type='file'><format type='raw'/><source file='{dir["link.raw"]}'/><backingStore/></backingStore><target dev='vda' bus='virtio'/></disk>";

        Assert.Empty(ReadValidated(dir, document).Drift);
    }

    [LibvirtSchemaFact]
    public void Layer_below_an_image_without_backing_is_an_extra_layer()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "top.qcow2", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        Assert.Null(QemuImg.Info(dir.Path, dir["top.qcow2"])["backing-filename"]);
        string document = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["top.qcow2"]}'/>"
            + $"<backingStore type='file'><format type='raw'/><source file='{dir["base.raw"]}'/><backingStore/></backingStore><target dev='vda' bus='virtio'/></disk>";

        LibvirtDrift drift = Assert.Single(ReadValidated(dir, document).Drift);

        Assert.Equal(LibvirtDriftKind.ExtraLayer, drift.Kind);
        Assert.Equal(1, drift.LayerIndex);
        Assert.Equal(dir["base.raw"], drift.Expected);
    }

    [LibvirtSchemaFact]
    public void Terminator_above_a_recorded_backing_file_is_a_missing_layer()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");
        string document = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["top.qcow2"]}'/><backingStore/><target dev='vda' bus='virtio'/></disk>";

        LibvirtDiskChain result = ReadValidated(dir, document);

        LibvirtDrift drift = Assert.Single(result.Drift);
        Assert.Equal(LibvirtDriftKind.MissingLayer, drift.Kind);
        Assert.Equal(0, drift.LayerIndex);
        Assert.Equal((string)QemuImg.Info(dir.Path, dir["top.qcow2"])["backing-filename"]!, drift.Actual);
        Assert.True(result.IsTerminated);
        Assert.Single(result.Report.Layers);
    }

    [LibvirtSchemaTheory]
    [InlineData("nbd://localhost/export", "nbd", "export", "<host name='localhost'/>", true)]
    [InlineData("nbd://localhost:10809/export", "nbd", "export", "<host name='localhost' port='10809'/>", true)]
    [InlineData("nbd:localhost:10809:exportname=export", "nbd", "export", "<host name='localhost' port='10809'/>", true)]
    [InlineData("nbd://localhost/export", "nbd", "other", "<host name='localhost'/>", false)]
    [InlineData("nbd://localhost:10810/export", "nbd", "export", "<host name='localhost'/>", false)]
    [InlineData("https://images.example/pool/base.raw?v=1", "https", "pool/base.raw?v=1", "<host name='images.example' port='443'/>", true)]
    [InlineData("http://images.example/pool/base.raw", "https", "pool/base.raw", "<host name='images.example'/>", false)]
    [InlineData("gluster://gl.example/vol/dir/base.raw", "gluster", "vol/dir/base.raw", "<host name='gl.example'/>", true)]
    [InlineData("iscsi://san.example:3260/iqn.2024-01.example:disk/1", "iscsi", "iqn.2024-01.example:disk/1", "<host name='san.example'/>", true)]
    [InlineData("rbd:pool/image:conf=/etc/ceph/ceph.conf", "rbd", "pool/image", "<host name='mon.example' port='6789'/>", true)]
    public void Network_backing_is_compared_as_libvirt_reads_the_name(string recorded, string protocol, string name, string host, bool same)
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", recorded, "-F", "raw", "-o", "size=1M", "top.qcow2");
        Assert.Equal(recorded, (string)QemuImg.Info(dir.Path, dir["top.qcow2"])["backing-filename"]!);
        string document = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{dir["top.qcow2"]}'/>"
            + $"<backingStore type='network'><format type='raw'/><source protocol='{protocol}' name='{SecurityElement.Escape(name)}'>{host}</source><backingStore/></backingStore>"
            + "<target dev='vda' bus='virtio'/></disk>";

        LibvirtDiskChain result = ReadValidated(dir, document);

        Assert.Equal(protocol, result.Layers[1].Protocol);
        Assert.Equal(name, result.Layers[1].Name);
        Assert.Equal(same, result.Drift.IsEmpty);
        if (!same)
        {
            Assert.Equal(LibvirtDriftKind.BackingNameMismatch, Assert.Single(result.Drift).Kind);
        }
    }

    [LibvirtSchemaFact]
    public void Live_domain_written_as_virsh_dumpxml_writes_it_is_read_disk_by_disk()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "mid.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "data.qcow2", "1M");
        string file = dir["guest.xml"];
        File.WriteAllText(file, $"""
            <domain type='kvm' id='7'>
              <name>guest</name>
              <uuid>0d7c1a8a-2a4d-4c61-9f3c-6d2a3d1e5b11</uuid>
              <memory unit='KiB'>1048576</memory>
              <currentMemory unit='KiB'>1048576</currentMemory>
              <vcpu placement='static'>1</vcpu>
              <resource>
                <partition>/machine</partition>
              </resource>
              <os>
                <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
                <boot dev='hd'/>
              </os>
              <devices>
                <emulator>/usr/bin/qemu-system-x86_64</emulator>
                <disk type='file' device='disk'>
                  <driver name='qemu' type='qcow2'/>
                  <source file='{dir["top.qcow2"]}' index='3'/>
                  <backingStore type='file' index='2'>
                    <format type='qcow2'/>
                    <source file='{dir["mid.qcow2"]}'/>
                    <backingStore type='file' index='1'>
                      <format type='raw'/>
                      <source file='{dir["base.raw"]}'/>
                      <backingStore/>
                    </backingStore>
                  </backingStore>
                  <target dev='vda' bus='virtio'/>
                  <alias name='virtio-disk0'/>
                  <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
                </disk>
                <disk type='file' device='disk'>
                  <driver name='qemu' type='qcow2'/>
                  <source file='{dir["data.qcow2"]}' index='4'/>
                  <backingStore/>
                  <target dev='vdb' bus='virtio'/>
                  <alias name='virtio-disk1'/>
                  <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
                </disk>
                <disk type='network' device='disk'>
                  <driver name='qemu' type='raw'/>
                  <source protocol='nbd' name='export' index='5'>
                    <host name='localhost' port='10809'/>
                  </source>
                  <target dev='vdc' bus='virtio'/>
                  <alias name='virtio-disk2'/>
                  <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0'/>
                </disk>
                <disk type='file' device='cdrom'>
                  <driver name='qemu' type='raw'/>
                  <target dev='sda' bus='sata'/>
                  <readonly/>
                  <alias name='sata0-0-0'/>
                  <address type='drive' controller='0' bus='0' target='0' unit='0'/>
                </disk>
                <interface type='network'>
                  <mac address='52:54:00:6b:3c:58'/>
                  <source network='default'/>
                  <model type='virtio'/>
                </interface>
              </devices>
              <seclabel type='dynamic' model='dac' relabel='yes'>
                <label>+64055:+994</label>
                <imagelabel>+64055:+994</imagelabel>
              </seclabel>
            </domain>
            """);
        (int exit, string output) = VirtXmlValidate.ValidateDomainFile(file);
        Assert.True(exit == 0, output);
        var qemu = QemuImg.Info(dir.Path, dir["top.qcow2"], backingChain: true).AsArray().Select(n => n!).ToList();

        ImmutableArray<LibvirtDiskChain> disks;
        using (FileStream stream = File.OpenRead(file))
        {
            disks = LibvirtDomainReader.Read(stream);
        }

        // The empty CD-ROM names no image.
        Assert.Equal(["vda", "vdb", "vdc"], disks.Select(d => d.Target));
        LibvirtDiskChain vda = disks[0];
        Assert.Equal(qemu.Select(l => Path.GetFullPath((string)l["filename"]!, dir.Path)), vda.Layers.Select(l => l.Path));
        Assert.Equal(qemu.Select(Format), vda.Layers.Select(l => l.Format));
        Assert.Equal([3, 2, 1], vda.Layers.Select(l => l.Index ?? 0));
        Assert.True(vda.IsTerminated && vda.IsSafe && vda.Drift.IsEmpty, vda.ToString());
        Assert.True(disks[1].IsTerminated && disks[1].IsSafe && disks[1].Drift.IsEmpty, disks[1].ToString());

        // No source here reads nbd: the disk cannot be judged, so it is not called safe (as for any image that cannot be read).
        LibvirtDiskChain vdc = disks[2];
        Assert.Equal("network", vdc.Layers[0].SourceType);
        Assert.Equal(["localhost:10809"], vdc.Layers[0].Hosts.ToArray());
        Assert.False(vdc.IsTerminated);
        Assert.False(vdc.IsSafe);
        Assert.Equal(TrustReason.ImageUnreadable, vdc.Report.Reason);
        Assert.Contains(vdc.Report.Findings, f => f.Code == BackingChain.Chain.FindingCodes.ProtocolReference);
    }

    [LibvirtSchemaFact]
    public async Task Open_network_chain_that_libvirt_cannot_walk_is_not_safe()
    {
        using var dir = new ScratchDirectory();
        string document = "<disk type='network' device='disk'><driver name='qemu' type='qcow2'/><source protocol='https' name='images/top.qcow2'><host name='images.example' port='443'/></source><target dev='vda' bus='virtio'/></disk>";
        Validate(dir, document);

        ImmutableArray<LibvirtDiskChain> disks = await LibvirtDomainReader.ReadAsync(new MemoryStream(Encoding.UTF8.GetBytes(document)));

        LibvirtDiskChain disk = Assert.Single(disks);
        Assert.Equal(0, disk.ProbeStart);
        Assert.False(disk.IsSafe);
        Assert.Contains("network", disk.UnsafeReason, StringComparison.Ordinal);
        Assert.Equal("https://images.example:443/images/top.qcow2", disk.Layers[0].ToString());
    }

    [Theory]
    [InlineData("<!DOCTYPE disk [<!ENTITY x 'a'>]><disk type='file'><source file='/x'/></disk>")]
    [InlineData("<!DOCTYPE disk [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><disk type='file'><source file='&x;'/></disk>")]
    [InlineData("<!DOCTYPE disk SYSTEM 'http://127.0.0.1:9/disk.dtd'><disk type='file'><source file='/x'/></disk>")]
    [InlineData("<disk type='file'><source file='/x'/><backingStore type='file'><source file='/y'/></backingStore></disk>")]
    [InlineData("<disk type='file'><source file='/x'/><backingStore type='file'><format type='raw'/></backingStore></disk>")]
    [InlineData("<pool type='dir'><name>x</name></pool>")]
    [InlineData("<disk type='file'><source file='/x'/>")]
    public void Hostile_or_invalid_documents_are_refused(string document)
    {
        Assert.ThrowsAny<XmlException>(() => LibvirtDomainReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(document))));
    }

    [Theory]
    [InlineData(LibvirtDomainReader.MaxLayers, true)]
    [InlineData(LibvirtDomainReader.MaxLayers + 1, false)]
    public void Nesting_is_bounded_at_libvirts_depth(int layers, bool accepted)
    {
        // Network layers: nothing is opened, only the nesting is read.
        var document = new StringBuilder("<disk type='network'><driver name='qemu' type='qcow2'/><source protocol='nbd' name='l0'><host name='h'/></source>");
        for (int i = 1; i < layers; i++)
        {
            document.Append(CultureInfo($"<backingStore type='network'><format type='qcow2'/><source protocol='nbd' name='l{i}'><host name='h'/></source>"));
        }

        document.Append("<backingStore/>").Append(string.Concat(Enumerable.Repeat("</backingStore>", layers - 1))).Append("</disk>");
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(document.ToString()));

        if (accepted)
        {
            Assert.Equal(layers, Assert.Single(LibvirtDomainReader.Read(stream)).Layers.Length);
        }
        else
        {
            XmlException error = Assert.ThrowsAny<XmlException>(() => LibvirtDomainReader.Read(stream));
            Assert.Contains("200", error.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>base.raw ← base.qcow2 (records raw) ← top.qcow (qcow v1 records no format, so base.qcow2 is probed).</summary>
    private static void MakeChainWithUnrecordedFormat(ScratchDirectory dir)
    {
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "base.qcow2");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow", "-b", "base.qcow2", "-F", "qcow2", "top.qcow");
        Assert.Null(QemuImg.Info(dir.Path, dir["top.qcow"])["backing-filename-format"]);
    }

    private static string Format(JsonNode layer) => (string)layer["format"]!;

    private static string CultureInfo(FormattableString text) => FormattableString.Invariant(text);

    private static void Validate(ScratchDirectory dir, string disk)
    {
        (int exit, string output) = VirtXmlValidate.ValidateDisk(dir.Path, disk);
        Assert.True(exit == 0, output + "\n" + disk);
    }

    /// <summary>Validates the disk in a domain document against libvirt's schema, then reads that same document.</summary>
    private static LibvirtDiskChain ReadValidated(ScratchDirectory dir, string disk, TrustPolicy? policy = null)
    {
        Validate(dir, disk);
        using FileStream stream = File.OpenRead(dir["domain.xml"]);
        return Assert.Single(LibvirtDomainReader.Read(stream, policy));
    }
}
