using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Sources;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;
using static BackingChain.Tests.Streaming.UploadTestHelpers;

namespace BackingChain.Tests.Trust;

/// <summary>
/// The judge, cell by cell: posture × where the referrer's format came from × the role of the file it names × where
/// that file lies. Every image is made by qemu-img (descriptors patched as text). The expected verdict of each cell
/// is the rule as the README states it, written out below by hand — never read back from the library — and every
/// cell is also judged through a memory chain and an upload stream, which must agree with the file chain.
/// </summary>
public sealed class JudgeTableTests
{
    public enum Source
    {
        Declared,
        Recorded,
        Probed,
    }

    public enum Role
    {
        BackingFile,
        DataFile,
        Extent,
    }

    public enum Where
    {
        InsideRoot,
        OutsideRoot,
        SymlinkEscapingRoot,
        MissingInsideRoot,
        Protocol,
        Json,
    }

    public static TheoryData<TrustPosture, Source, Role, Where> Cells()
    {
        var cells = new TheoryData<TrustPosture, Source, Role, Where>();
        foreach (TrustPosture posture in Enum.GetValues<TrustPosture>())
        {
            foreach (Source source in Enum.GetValues<Source>())
            {
                foreach (Role role in Enum.GetValues<Role>())
                {
                    foreach (Where where in Enum.GetValues<Where>())
                    {
                        // qemu 7.2.13 and later read data-file and extent names as literal file names, never as
                        // protocols, so those two locations exist only for backing files.
                        if (role != Role.BackingFile && where is Where.Protocol or Where.Json)
                        {
                            continue;
                        }

                        cells.Add(posture, source, role, where);
                    }
                }
            }
        }

        return cells;
    }

    /// <summary>The rule, stated once more by hand: what the verdict on the image naming the file must be.</summary>
    private static (bool Safe, TrustReason Reason, string[] Codes) Expected(TrustPosture posture, Source source, Where where)
    {
        bool mustBeTrusted = posture == TrustPosture.UntrustedImage || source == Source.Probed;
        TrustReason untrusted = source == Source.Probed ? TrustReason.ProbedWithUntrustedReferences : TrustReason.ReferenceNotTrusted;
        string[] untrustedCodes = source == Source.Probed
            ? [FindingCodes.UnreachableImage, FindingCodes.ProbedFormatWithReferences]
            : [FindingCodes.UnreachableImage];
        TrustReason accepted = source switch
        {
            Source.Declared => TrustReason.FormatDeclared,
            Source.Recorded => TrustReason.FormatRecorded,
            _ => TrustReason.ProbedWithTrustedReferences,
        };

        return where switch
        {
            Where.InsideRoot => (true, accepted, []),
            Where.MissingInsideRoot => (false, TrustReason.ReferenceMissing, [FindingCodes.UnreachableImage]),
            Where.OutsideRoot or Where.SymlinkEscapingRoot => mustBeTrusted ? (false, untrusted, untrustedCodes) : (true, accepted, []),
            _ => mustBeTrusted
                ? (false, untrusted, source == Source.Probed ? [FindingCodes.ProtocolReference, FindingCodes.ProbedFormatWithReferences] : [FindingCodes.ProtocolReference])
                : (false, TrustReason.ReferenceUnreachable, [FindingCodes.ProtocolReference]),
        };
    }

    [QemuImgTheory]
    [MemberData(nameof(Cells))]
    public async Task Every_cell_of_the_rule(TrustPosture posture, Source source, Role role, Where where)
    {
        using var dir = new ScratchDirectory();
        Cell cell = Cell.Make(dir, role, where);
        var policy = new TrustPolicy { Posture = posture, TrustedRoots = [cell.Root] };
        (bool safe, TrustReason reason, string[] codes) = Expected(posture, source, where);

        // Recorded: an overlay in the root records the image's format, so the image is layer 1.
        string top = cell.Image;
        ImageFormat? declared = source == Source.Declared ? cell.Format : null;
        if (source == Source.Recorded)
        {
            top = Path.Combine(cell.Root, "overlay.qcow2");
            QemuImg.Run(cell.Root, "create", "-q", "-f", "qcow2", "-u", "-b", cell.Image, "-F", cell.Format.GetQemuName(), "overlay.qcow2", "1M");
            declared = ImageFormat.Qcow2;
        }

        var spy = new SpyFileProvider();
        TrustReport report = await new ImageChainResolver(new ImageChainResolverOptions { Policy = policy, SourceProviders = [spy] }).CheckAsync(top, declared);
        string describe = Describe(report);

        // The chain's reason is its first rejection; when it is safe, the named-from layer's own reason is the one to check.
        int layer = source == Source.Recorded ? 1 : 0;
        Assert.True(safe == report.IsSafe, describe);
        Assert.True(reason == (safe ? report.Layers[layer].Reason : report.Reason), $"expected {reason}: {describe}");
        foreach (string code in codes)
        {
            Assert.True(report.Findings.Any(f => f.Code == code), $"expected a {code} finding: {describe}");
        }

        // What the rule refuses is never opened, and what it allows is opened exactly as named.
        bool local = where is not (Where.Protocol or Where.Json);
        bool refused = !safe && where is Where.OutsideRoot or Where.SymlinkEscapingRoot;
        Assert.True(!local || refused != spy.Opened.Contains(cell.Named), $"opened: [{string.Join(", ", spy.Opened)}]: {describe}");
        ReferenceDecision decision = report.Chain.Decisions.Single(d => d.LayerIndex == layer && d.Reference.Role == cell.ReferenceRole);
        Assert.Equal(cell.Named, decision.Reference.FullName);
        if (where == Where.MissingInsideRoot)
        {
            Assert.Equal(ReferenceOutcome.Missing, decision.Outcome);
            Assert.Contains(report.Findings, f => f.Message.Contains("No such file or directory", StringComparison.Ordinal) && f.Reference?.StoredName == decision.Reference.StoredName);
        }

        // The same bytes through the other two input shapes, under the same policy: the same verdict.
        if (source != Source.Recorded)
        {
            TrustReport memory = await JudgeFromMemoryAsync(cell, policy, declared);
            Assert.True((report.IsSafe, report.Reason) == (memory.IsSafe, memory.Reason), $"memory: {Describe(memory)} / file: {describe}");

            var options = new UploadInspectionOptions { Policy = policy, DeclaredFormat = declared, Name = cell.Image };
            UploadInspection upload = await InspectAsync(File.ReadAllBytes(cell.Image), 4096, options);
            Assert.True((report.IsSafe, report.Reason) == (upload.IsAccepted, upload.Reason), $"upload: {Describe(upload.Report)} / file: {describe}");
        }
    }

    /// <summary>Every file of the scratch tree, by the names the chain uses, served from memory (symlinks as their targets).</summary>
    private static async Task<TrustReport> JudgeFromMemoryAsync(Cell cell, TrustPolicy policy, ImageFormat? declared)
    {
        var files = new Dictionary<string, ReadOnlyMemory<byte>>(StringComparer.Ordinal);
        foreach (string path in Directory.EnumerateFiles(cell.Scratch, "*", SearchOption.AllDirectories))
        {
            if (File.Exists(path))
            {
                files[path] = File.ReadAllBytes(path);
            }
        }

        var provider = new MemoryImageSourceProvider(files);
        using var top = new MemoryImageSource(cell.Image, files[cell.Image]);
        return await new ImageChainResolver(new ImageChainResolverOptions { Policy = policy, SourceProviders = [provider] }).CheckAsync(top, declared);
    }

    internal static string Describe(TrustReport report) =>
        $"{(report.IsSafe ? "safe" : "unsafe")} {report.Reason} ending={report.Chain.Ending} layers=[{string.Join("; ", report.Layers.Select(l => $"{l.FileName} {l.FormatSource} {l.Reason}"))}] " +
        $"decisions=[{string.Join("; ", report.Chain.Decisions)}] findings=[{string.Join("; ", report.Findings.Select(f => $"{f.Code}: {f.Message}"))}]";

    /// <summary>An image in a trusted root that names one file, placed as the cell asks.</summary>
    private sealed record Cell(string Scratch, string Root, string Image, ImageFormat Format, ReferenceRole ReferenceRole, string Named)
    {
        public static Cell Make(ScratchDirectory dir, Role role, Where where)
        {
            string root = dir["root"];
            string outside = dir["outside"];
            Directory.CreateDirectory(root);
            Directory.CreateDirectory(outside);
            QemuImg.Run(outside, "create", "-q", "-f", "raw", "named.raw", "1M");

            string named = where switch
            {
                Where.InsideRoot or Where.MissingInsideRoot => Path.Combine(root, "named.raw"),
                Where.OutsideRoot => Path.Combine(outside, "named.raw"),
                Where.SymlinkEscapingRoot => Path.Combine(root, "link.raw"),
                Where.Protocol => "nbd://attacker.example:10809/export",
                _ => """json:{"driver":"raw","file":{"driver":"file","filename":"/etc/passwd"}}""",
            };
            if (where == Where.InsideRoot)
            {
                File.Copy(Path.Combine(outside, "named.raw"), named);
            }
            else if (where == Where.SymlinkEscapingRoot)
            {
                File.CreateSymbolicLink(named, Path.Combine(outside, "named.raw"));
            }

            switch (role)
            {
                case Role.BackingFile:
                    QemuImg.Run(root, "create", "-q", "-f", "qcow2", "-u", "-b", named, "-F", "raw", "image.qcow2", "1M");
                    return new Cell(dir.Path, root, Path.Combine(root, "image.qcow2"), ImageFormat.Qcow2, ReferenceRole.BackingFile, named);

                case Role.DataFile:
                    // qemu-img creates the data file (through the symlink, for that cell); a missing one is removed after.
                    QemuImg.Run(root, "create", "-q", "-f", "qcow2", "-o", $"data_file={named}", "image.qcow2", "1M");
                    if (where == Where.MissingInsideRoot)
                    {
                        File.Delete(named);
                    }

                    return new Cell(dir.Path, root, Path.Combine(root, "image.qcow2"), ImageFormat.Qcow2, ReferenceRole.ExternalDataFile, named);

                default:
                    QemuImg.Run(root, "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "image.vmdk", "1M");
                    File.Delete(Path.Combine(root, "image-flat.vmdk"));
                    string descriptor = File.ReadAllText(Path.Combine(root, "image.vmdk"));
                    File.WriteAllText(Path.Combine(root, "image.vmdk"), descriptor.Replace("\"image-flat.vmdk\"", $"\"{named}\"", StringComparison.Ordinal));
                    return new Cell(dir.Path, root, Path.Combine(root, "image.vmdk"), ImageFormat.Vmdk, ReferenceRole.Extent, named);
            }
        }
    }
}
