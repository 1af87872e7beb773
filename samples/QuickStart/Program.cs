// The README's quick starts, compiled. A test checks that the README shows exactly the code between each
// "snippet" marker pair below, so the two cannot drift apart. Run: QuickStart inspect|check|xml|fix|gate FILE [...]
using System;
using System.IO;
using System.IO.Pipelines;
using System.Threading.Tasks;
using BackingChain;
using BackingChain.Chain;
using BackingChain.Editing;
using BackingChain.Formats.Qcow2;
using BackingChain.Interop;
using BackingChain.Streaming;
using BackingChain.Trust;
using BackingChain.Walk;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: QuickStart inspect|check|xml|fix|gate FILE [BACKING FORMAT]");
    return 2;
}

string path = args[1];
return args[0] switch
{
    "inspect" => await InspectAsync(path),
    "check" => await CheckAsync(path),
    "xml" => await XmlAsync(path),
    "fix" => await FixAsync(path, args[2], args[3]),
    "gate" => await GateAsync(path),
    _ => 2,
};

static async Task<int> InspectAsync(string path)
{
    // snippet: inspect-file
    // Read only the header: a span in, a struct out, nothing allocated while parsing.
    byte[] head = new byte[64 * 1024];
    using (FileStream file = File.OpenRead(path))
    {
        head = head[..file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)];
    }

    if (Qcow2Header.TryParse(head, out Qcow2Header header, out HeaderError error))
    {
        Console.WriteLine($"qcow2 v{header.Version}, {header.VirtualSize} bytes, cluster {header.ClusterSize}");
        Console.WriteLine($"backing file: {header.GetBackingFileName(head) ?? "(none)"} ({header.GetBackingFormat(head) ?? "format not recorded"})");
    }
    else
    {
        Console.WriteLine($"not a valid qcow2 header: {error}");
    }

    // Or the whole chain, described as `qemu-img info --output=json --backing-chain` would describe it.
    ImageChain chain = await new ImageChainResolver().ResolveAsync(path);
    Console.WriteLine(QemuImgInfoJson.ToJson(chain));
    // end snippet
    return 0;
}

static async Task<int> CheckAsync(string path)
{
    // snippet: check-chain
    // The host posture (libvirt's rule) trusting the image store; roots must be absolute paths (a root missing when a walk runs trusts nothing).
    string store = Path.GetDirectoryName(Path.GetFullPath(path))!; // e.g. /var/lib/libvirt/images
    var policy = new TrustPolicy { Posture = TrustPosture.Host, TrustedRoots = [store] };
    var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = policy });

    // Declare the top image's format (like qemu-img -f); everything below it is read with the formats the
    // overlays recorded, or probed and then judged. One call walks and judges, under the one policy.
    TrustReport report = await resolver.CheckAsync(path, ImageFormat.Qcow2);

    foreach (LayerVerdict layer in report.Layers)
    {
        Console.WriteLine($"{layer.FileName}: {layer.Format.GetQemuName()} ({layer.FormatSource}), {layer.Decision} ({layer.Reason})");
    }

    foreach (ChainFinding finding in report.Findings)
    {
        Console.WriteLine($"{finding.Code}: {finding.Message}");
    }

    foreach (string command in report.Remediation)
    {
        Console.WriteLine($"fix with: {command}");
    }

    Console.WriteLine(report.IsSafe ? "safe to use" : "NOT safe to use");
    // end snippet
    return report.IsSafe ? 0 : 1;
}

static async Task<int> XmlAsync(string path)
{
    // snippet: libvirt-xml
    // The whole chain as nested <backingStore> elements, so libvirt probes nothing. Only a complete chain
    // that the policy judges safe is written.
    TrustReport report = await new ImageChainResolver().CheckAsync(path, ImageFormat.Qcow2);
    if (!LibvirtDiskXml.TryToXml(report, "vdb", out string? xml, out string? reason))
    {
        Console.Error.WriteLine($"no XML: {reason}");
        return 1;
    }

    Console.WriteLine(xml);
    // end snippet
    return 0;
}

static async Task<int> FixAsync(string path, string backingName, string backingFormat)
{
    // snippet: fix-backing-format
    // Record the backing format the overlay lacks, in place, as `qemu-img rebase -u -b NAME -F FMT` does:
    // only the header and its extensions are rewritten.
    bool recorded = BackingFileEditor.SetBackingFile(path, backingName, backingFormat);
    Console.WriteLine(recorded ? "backing format recorded" : "this format cannot record that backing format");
    // end snippet
    return recorded ? 0 : 1;
}

static async Task<int> GateAsync(string path)
{
    using FileStream upload = File.OpenRead(path);
    string temporary = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName());
    using var stored = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);

    // snippet: gate-upload
    // In ASP.NET Core the reader is Request.BodyReader. The upload streams through once: it is judged from
    // its head and tail windows (bounded memory) while it is copied to where it will be stored. Uploads are
    // judged in the untrusted-image posture: every file the image names must lie in a trusted root.
    // One gate serves every upload (register it with services.AddBackingChain() in ASP.NET Core).
    var gate = new ImageUploadGate(new UploadInspectionOptions
    {
        Policy = TrustPolicy.Untrusted, // or new TrustPolicy { Posture = TrustPosture.UntrustedImage, TrustedRoots = [...] }
    });

    // Stored in a file (a FileStream), the upload keeps its holes: zero 4 KiB blocks are skipped, not written,
    // and the rest goes out in writes of up to 1 MiB (UploadInspectionOptions.SparseDestination, on by default).
    PipeReader body = PipeReader.Create(upload);
    UploadInspection inspection = await gate.InspectAsync(
        body,
        stored,
        name: "uploads/disk.qcow2",     // where it will live: relative references resolve against it
        declaredFormat: null,           // what the client claims, if anything; null probes the content
        expectedLength: upload.Length); // e.g. Content-Length
    Console.WriteLine($"{inspection.Format.GetQemuName()} ({inspection.FormatSource}), virtual size {inspection.VirtualSize}: {(inspection.IsAccepted ? "accepted" : "rejected")} ({inspection.Reason.GetStableName()})");
    foreach (ImageReference reference in inspection.References)
    {
        Console.WriteLine($"names {reference.Role} '{reference.StoredName}' ({reference.Kind})");
    }
    // end snippet

    return inspection.IsAccepted ? 0 : 1;
}
