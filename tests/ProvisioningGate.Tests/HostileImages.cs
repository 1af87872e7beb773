using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using BackingChain.Tests.Infrastructure;

namespace ProvisioningGate.Tests;

/// <summary>One upload the gate must refuse: its bytes, the format the client declares (if any), and why it is hostile.</summary>
public sealed record HostileUpload(string Kind, byte[] Bytes, string? Format)
{
    public override string ToString() => Kind;
}

/// <summary>
/// Every hostile kind the library knows, made with qemu-img at test time in a folder outside any image root: a raw
/// disk whose guest wrote a qcow2, QED or VMDK header naming a host file (uploaded undeclared, so probed), the same
/// declared (the untrusted-image posture refuses it anyway), a qcow2 external data file and a VMDK extent outside
/// the root, truncated headers, a polyglot (qcow2 with a fixed VHD footer), and a <c>json:</c> backing name.
/// </summary>
public static class HostileImages
{
    public static List<HostileUpload> Build(string workDirectory)
    {
        string outside = Path.Combine(workDirectory, "outside");
        Directory.CreateDirectory(outside);
        string Make(string file, params string[] arguments)
        {
            QemuImg.Run(workDirectory, arguments);
            return Path.Combine(workDirectory, file);
        }

        byte[] Read(string path) => File.ReadAllBytes(path);

        string qcow2Host = Make("host.qcow2", "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", "host.qcow2", "1M");
        string qedHost = Make("host.qed", "create", "-q", "-f", "qed", "-u", "-b", "/etc/passwd", "-F", "raw", "host.qed", "1M");
        Make("outside/parent.vmdk", "create", "-q", "-f", "vmdk", "outside/parent.vmdk", "1M");
        string vmdkParent = Make("child.vmdk", "create", "-q", "-f", "vmdk", "-b", Path.Combine(outside, "parent.vmdk"), "-F", "vmdk", "child.vmdk");
        string dataFile = Make("data.qcow2", "create", "-q", "-f", "qcow2", "-o", "data_file=" + Path.Combine(outside, "data.raw"), "data.qcow2", "1M");
        string jsonName = Make("json.qcow2", "create", "-q", "-f", "qcow2", "-u", "-b", """json:{"file.driver":"file","file.filename":"/etc/passwd"}""", "-F", "raw", "json.qcow2", "1M");
        string plain = Make("plain.qcow2", "create", "-q", "-f", "qcow2", "plain.qcow2", "1M");
        string fixedVhd = Make("fixed.vhd", "create", "-q", "-f", "vpc", "-o", "subformat=fixed", "fixed.vhd", "1M");

        // A monolithicFlat descriptor whose extent is rewritten to a host file.
        string flat = Make("flat.vmdk", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "flat.vmdk", "1M");
        string descriptor = File.ReadAllText(flat).Replace("\"flat-flat.vmdk\"", "\"/etc/passwd\"", StringComparison.Ordinal);
        if (!descriptor.Contains("/etc/passwd", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("qemu-img wrote an unexpected VMDK descriptor:\n" + descriptor);
        }

        byte[] vhd = Read(fixedVhd);
        byte[] polyglot = [.. Read(plain), .. vhd.AsSpan(vhd.Length - 512)];

        return
        [
            new("raw carrying a qcow2 header naming /etc/passwd", Read(qcow2Host), null),
            new("qcow2 declared, naming /etc/passwd", Read(qcow2Host), "qcow2"),
            new("raw carrying a QED header naming /etc/passwd", Read(qedHost), null),
            new("raw carrying a VMDK header naming a parent outside the root", Read(vmdkParent), null),
            new("VMDK declared, naming a parent outside the root", Read(vmdkParent), "vmdk"),
            new("VMDK descriptor whose extent is /etc/passwd", Encoding.ASCII.GetBytes(descriptor), null),
            new("qcow2 with an external data file outside the root", Read(dataFile), "qcow2"),
            new("qcow2 with a json: backing name", Read(jsonName), "qcow2"),
            new("qcow2 header truncated to 48 bytes", Read(plain)[..48], null),
            new("qcow2 header truncated to 48 bytes, declared", Read(plain)[..48], "qcow2"),
            new("polyglot: qcow2 with a fixed VHD footer", polyglot, null),
            new("empty upload", [], null),
        ];
    }
}
