using System;
using System.Collections.Generic;
using BackingChain.Chain;
using BackingChain.Detection;
using BackingChain.Formats.Bochs;
using BackingChain.Formats.Cloop;
using BackingChain.Formats.Dmg;
using BackingChain.Formats.Luks;
using BackingChain.Formats.Parallels;
using BackingChain.Formats.Qcow;
using BackingChain.Formats.Qcow2;
using BackingChain.Formats.Qed;
using BackingChain.Formats.Vdi;
using BackingChain.Formats.Vhdx;
using BackingChain.Formats.Vmdk;
using BackingChain.Formats.Vpc;
using BackingChain.Interop;
using BackingChain.Sources;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Fuzz;

/// <summary>
/// The fuzz targets. The only outcomes allowed are a result, a <see cref="HeaderError"/> from <c>TryParse</c> and the
/// library's <see cref="ImageFormatException"/> from <c>Parse</c>; the resolver and the upload gate document that they
/// never throw for image content, so nothing is caught around them. Anything else escapes, and afl records a crash.
/// </summary>
internal static class FuzzTargets
{
    public static IReadOnlyDictionary<string, Action<byte[]>> All { get; } = new SortedDictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["qcow2"] = data => { Spans.Qcow2(data); ReaderPath.Run(data, ImageFormat.Qcow2); },
        ["qcow"] = data => { Spans.Qcow(data); ReaderPath.Run(data, ImageFormat.Qcow); },
        ["qed"] = data => { Spans.Qed(data); ReaderPath.Run(data, ImageFormat.Qed); },
        ["vmdk"] = data => { Spans.Vmdk(data); ReaderPath.Run(data, ImageFormat.Vmdk); },
        ["vpc"] = data => { Spans.Vpc(data); ReaderPath.Run(data, ImageFormat.Vpc); },
        ["vhdx"] = data => { Spans.Vhdx(data); ReaderPath.Run(data, ImageFormat.Vhdx); },
        ["vdi"] = data => { Spans.Vdi(data); ReaderPath.Run(data, ImageFormat.Vdi); },
        ["luks"] = data => { Spans.Luks(data); ReaderPath.Run(data, ImageFormat.Luks); },
        ["parallels"] = data => { Spans.Parallels(data); ReaderPath.Run(data, ImageFormat.Parallels); },
        ["bochs"] = data => { Spans.Bochs(data); ReaderPath.Run(data, ImageFormat.Bochs); },
        ["cloop"] = data => { Spans.Cloop(data); ReaderPath.Run(data, ImageFormat.Cloop); },
        ["dmg"] = data => { Spans.Dmg(data); ReaderPath.Run(data, ImageFormat.Dmg); },
        ["chain"] = ChainPath.Run,
        ["upload"] = UploadPath.Run,
    };

    /// <summary>Fails the run (afl sees the crash) when an invariant the harness checks does not hold.</summary>
    public static void Require(bool condition, string what)
    {
        if (!condition)
        {
            throw new FuzzInvariantException(what);
        }
    }

    /// <summary>
    /// The resolver and the upload gate turn a reader's runtime exception into a finding ("defence in depth"), which
    /// would hide the bug from the fuzzer. Those findings name the exception type; treat them as the crash they are.
    /// </summary>
    public static void RequireNoSwallowedException(IEnumerable<ChainFinding> findings)
    {
        foreach (ChainFinding finding in findings)
        {
            if (finding.Message.Contains("could not be read (", StringComparison.Ordinal))
            {
                throw new FuzzInvariantException($"a reader threw and the caller swallowed it: {finding.Message}");
            }
        }
    }
}

/// <summary>An invariant of the harness failed: a crash to record.</summary>
internal sealed class FuzzInvariantException(string message) : Exception(message);

/// <summary>Each format's public span parsers: <c>TryParse</c> and <c>Parse</c> must agree, and the accessors must work on what parsed.</summary>
internal static class Spans
{
    private static void Agree(bool ok, HeaderError error, ImageFormatException? thrown, string parser)
    {
        FuzzTargets.Require(ok == (error == HeaderError.None), $"{parser}.TryParse returned {ok} with error {error}");
        FuzzTargets.Require(ok == (thrown is null), $"{parser}.TryParse said {ok} but Parse {(thrown is null ? "did not throw" : "threw")}");
        FuzzTargets.Require(thrown is null || thrown.Error == error, $"{parser}.Parse threw {thrown?.Error}, TryParse said {error}");
    }

    public static void Qcow2(ReadOnlySpan<byte> data)
    {
        bool ok = Qcow2Header.TryParse(data, out Qcow2Header header, out HeaderError error);
        ImageFormatException? thrown = null;
        try
        {
            _ = Qcow2Header.Parse(data);
        }
        catch (ImageFormatException ex)
        {
            thrown = ex;
        }

        Agree(ok, error, thrown, nameof(Qcow2Header));
        if (ok)
        {
            Names(header.GetBackingFileName, header.GetBackingFormat, header.GetExternalDataFileName, data);
            _ = data[header.FeatureNameTableRange];
            _ = header.ClusterSize + header.RefcountBits;
        }
    }

    /// <summary>
    /// Names stored in a header are decoded strictly: one that is not valid UTF-8 is the library's
    /// <see cref="ImageFormatException"/>, an allowed outcome; anything else escapes.
    /// </summary>
    private static void Names(NameAccessor first, NameAccessor? second, NameAccessor? third, ReadOnlySpan<byte> data)
    {
        foreach (NameAccessor? accessor in new[] { first, second, third })
        {
            try
            {
                _ = accessor?.Invoke(data);
            }
            catch (ImageFormatException ex) when (ex.Error == HeaderError.InvalidText)
            {
            }
        }
    }

    private delegate string? NameAccessor(ReadOnlySpan<byte> data);

    public static void Qcow(ReadOnlySpan<byte> data)
    {
        bool ok = QcowHeader.TryParse(data, out QcowHeader header, out HeaderError error);
        ImageFormatException? thrown = null;
        try
        {
            _ = QcowHeader.Parse(data);
        }
        catch (ImageFormatException ex)
        {
            thrown = ex;
        }

        Agree(ok, error, thrown, nameof(QcowHeader));
        if (ok)
        {
            Names(header.GetBackingFileName, null, null, data);
        }
    }

    public static void Qed(ReadOnlySpan<byte> data)
    {
        // The file length is part of the input: the first 8 bytes (little-endian) when present, so afl can vary it
        // (negative and huge included: TryParse documents that it never throws for bad data).
        long fileLength = data.Length >= 8 ? BitConverter.ToInt64(data[..8]) : data.Length;
        foreach (long length in (ReadOnlySpan<long>)[data.Length, fileLength])
        {
            bool ok = QedHeader.TryParse(data, length, out QedHeader header, out HeaderError error);
            ImageFormatException? thrown = null;
            try
            {
                _ = QedHeader.Parse(data, length);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex;
            }

            Agree(ok, error, thrown, nameof(QedHeader));
            if (ok)
            {
                Names(header.GetBackingFileName, null, null, data);
                _ = header.BackingFormat;
            }
        }
    }

    public static void Vmdk(ReadOnlySpan<byte> data)
    {
        {
            bool ok = VmdkSparseHeader.TryParse(data, out _, out HeaderError error);
            ImageFormatException? thrown = null;
            try
            {
                _ = VmdkSparseHeader.Parse(data);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex;
            }

            Agree(ok, error, thrown, nameof(VmdkSparseHeader));
        }

        {
            bool ok = VmdkSeSparseHeader.TryParse(data, out _, out HeaderError error);
            ImageFormatException? thrown = null;
            try
            {
                _ = VmdkSeSparseHeader.Parse(data);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex;
            }

            Agree(ok, error, thrown, nameof(VmdkSeSparseHeader));
        }

        {
            bool ok = VmdkCowdHeader.TryParse(data, out _, out HeaderError error);
            ImageFormatException? thrown = null;
            try
            {
                _ = VmdkCowdHeader.Parse(data);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex;
            }

            Agree(ok, error, thrown, nameof(VmdkCowdHeader));
        }

        // The descriptor as a file of its own, and embedded at 0x200 of a sparse file.
        Descriptor(data);
        if (data.Length > 0x200)
        {
            Descriptor(data[0x200..]);
        }
    }

    private static void Descriptor(ReadOnlySpan<byte> text)
    {
        bool ok = VmdkDescriptor.TryParse(text, out VmdkDescriptor descriptor, out HeaderError error);
        ImageFormatException? thrown = null;
        try
        {
            _ = VmdkDescriptor.Parse(text);
        }
        catch (ImageFormatException ex)
        {
            thrown = ex;
        }

        Agree(ok, error, thrown, nameof(VmdkDescriptor));
        if (ok)
        {
            _ = descriptor.GetCreateType(text);
            Names(descriptor.GetParentFileNameHint, null, null, text);
        }

        VmdkExtentEnumerator extents = VmdkDescriptor.EnumerateExtents(text);
        int count = 0;
        while (extents.MoveNext())
        {
            VmdkExtentLine line = extents.Current;
            _ = text[line.FileNameRange];
            _ = line.TypeName;
            FuzzTargets.Require(++count <= text.Length, "the extent enumerator does not advance");
        }

        _ = text[extents.ErrorLine];
    }

    public static void Vpc(ReadOnlySpan<byte> data)
    {
        Footer(data);
        if (data.Length >= 512)
        {
            Footer(data[^512..]);
        }

        ReadOnlySpan<byte> dynamic = data.Length > 512 ? data[512..] : data;
        bool ok = VhdDynamicHeader.TryParse(dynamic, out _, out HeaderError error);
        ImageFormatException? thrown = null;
        try
        {
            _ = VhdDynamicHeader.Parse(dynamic);
        }
        catch (ImageFormatException ex)
        {
            thrown = ex;
        }

        Agree(ok, error, thrown, nameof(VhdDynamicHeader));
        if (ok)
        {
            _ = VhdDynamicHeader.GetParentUnicodeName(dynamic);
            for (int i = 0; i < 8; i++)
            {
                VhdParentLocator locator = VhdDynamicHeader.GetParentLocator(dynamic, i);
                if (locator.PlatformDataOffset < (ulong)data.Length)
                {
                    ReadOnlySpan<byte> rest = data[(int)locator.PlatformDataOffset..];
                    _ = locator.DecodePath(rest[..(int)Math.Min(rest.Length, locator.PlatformDataLength)]);
                }
            }
        }
    }

    private static void Footer(ReadOnlySpan<byte> data)
    {
        bool ok = VhdFooter.TryParse(data, out _, out HeaderError error);
        ImageFormatException? thrown = null;
        try
        {
            _ = VhdFooter.Parse(data);
        }
        catch (ImageFormatException ex)
        {
            thrown = ex;
        }

        Agree(ok, error, thrown, nameof(VhdFooter));
    }

    public static void Vhdx(ReadOnlySpan<byte> data)
    {
        {
            bool ok = VhdxHeader.TryParse(data, out _, out HeaderError error);
            ImageFormatException? thrown = null;
            try
            {
                _ = VhdxHeader.Parse(data);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex;
            }

            Agree(ok, error, thrown, nameof(VhdxHeader));
        }

        {
            bool ok = VhdxRegionTable.TryParse(data, out VhdxRegionTable table, out HeaderError error);
            ImageFormatException? thrown = null;
            try
            {
                _ = VhdxRegionTable.Parse(data);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex;
            }

            Agree(ok, error, thrown, nameof(VhdxRegionTable));
            for (int i = 0; ok && i < table.EntryCount; i++)
            {
                _ = table.GetEntry(data, i);
            }
        }

        {
            bool ok = VhdxMetadataTable.TryParse(data, out VhdxMetadataTable table, out HeaderError error);
            ImageFormatException? thrown = null;
            try
            {
                _ = VhdxMetadataTable.Parse(data);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex;
            }

            Agree(ok, error, thrown, nameof(VhdxMetadataTable));
            for (int i = 0; ok && i < table.EntryCount; i++)
            {
                _ = table.GetEntry(data, i);
            }
        }

        {
            bool ok = VhdxParentLocator.TryParse(data, out VhdxParentLocator locator, out HeaderError error);
            ImageFormatException? thrown = null;
            try
            {
                _ = VhdxParentLocator.Parse(data);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex;
            }

            Agree(ok, error, thrown, nameof(VhdxParentLocator));
            if (ok)
            {
                foreach (string key in (ReadOnlySpan<string>)[VhdxParentLocator.ParentLinkageKey, VhdxParentLocator.ParentLinkage2Key,
                    VhdxParentLocator.RelativePathKey, VhdxParentLocator.VolumePathKey, VhdxParentLocator.AbsoluteWin32PathKey])
                {
                    _ = locator.GetValue(data, key);
                }
            }
        }
    }

    public static void Vdi(ReadOnlySpan<byte> data)
    {
        bool ok = VdiHeader.TryParse(data, out _, out HeaderError error);
        ImageFormatException? thrown = null;
        try
        {
            _ = VdiHeader.Parse(data);
        }
        catch (ImageFormatException ex)
        {
            thrown = ex;
        }

        Agree(ok, error, thrown, nameof(VdiHeader));
    }

    public static void Luks(ReadOnlySpan<byte> data)
    {
        {
            bool ok = Luks1Header.TryParse(data, out _, out HeaderError error);
            ImageFormatException? thrown = null;
            try
            {
                _ = Luks1Header.Parse(data);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex;
            }

            Agree(ok, error, thrown, nameof(Luks1Header));
            if (ok)
            {
                _ = Luks1Header.GetCipherName(data) + Luks1Header.GetCipherMode(data) + Luks1Header.GetHashSpec(data) + Luks1Header.GetUuid(data);
                for (int i = 0; i < 8; i++)
                {
                    _ = Luks1Header.GetKeySlot(data, i);
                }
            }
        }

        {
            bool ok = Luks2Header.TryParse(data, out _, out HeaderError error);
            ImageFormatException? thrown = null;
            try
            {
                _ = Luks2Header.Parse(data);
            }
            catch (ImageFormatException ex)
            {
                thrown = ex;
            }

            Agree(ok, error, thrown, nameof(Luks2Header));
            if (ok)
            {
                _ = Luks2Header.GetUuid(data) + Luks2Header.GetLabel(data) + Luks2Header.GetChecksumAlgorithm(data);
            }
        }
    }

    public static void Parallels(ReadOnlySpan<byte> data)
    {
        bool ok = ParallelsHeader.TryParse(data, out _, out HeaderError error);
        ImageFormatException? thrown = null;
        try
        {
            _ = ParallelsHeader.Parse(data);
        }
        catch (ImageFormatException ex)
        {
            thrown = ex;
        }

        Agree(ok, error, thrown, nameof(ParallelsHeader));
    }

    public static void Bochs(ReadOnlySpan<byte> data)
    {
        bool ok = BochsHeader.TryParse(data, out _, out HeaderError error);
        ImageFormatException? thrown = null;
        try
        {
            _ = BochsHeader.Parse(data);
        }
        catch (ImageFormatException ex)
        {
            thrown = ex;
        }

        Agree(ok, error, thrown, nameof(BochsHeader));
    }

    public static void Cloop(ReadOnlySpan<byte> data)
    {
        bool ok = CloopHeader.TryParse(data, out _, out HeaderError error);
        ImageFormatException? thrown = null;
        try
        {
            _ = CloopHeader.Parse(data);
        }
        catch (ImageFormatException ex)
        {
            thrown = ex;
        }

        Agree(ok, error, thrown, nameof(CloopHeader));
    }

    public static void Dmg(ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<byte> trailer = data.Length >= 512 ? data[^512..] : data;
        bool ok = DmgTrailer.TryParse(trailer, out _, out HeaderError error);
        ImageFormatException? thrown = null;
        try
        {
            _ = DmgTrailer.Parse(trailer);
        }
        catch (ImageFormatException ex)
        {
            thrown = ex;
        }

        Agree(ok, error, thrown, nameof(DmgTrailer));
    }
}

/// <summary>The async format reader path: the resolver reads the input as a declared format from a memory source.</summary>
internal static class ReaderPath
{
    private static readonly ImageChainResolver Resolver = new(new ImageChainResolverOptions { SourceProviders = [] });

    public static void Run(byte[] data, ImageFormat declared)
    {
        using var source = new MemoryImageSource("fuzz.img", data);
        ImageChain chain = Resolver.ResolveAsync(source, declared).AsTask().GetAwaiter().GetResult();
        FuzzTargets.RequireNoSwallowedException(chain.Findings);
        FuzzTargets.Require(chain.Layers.Length <= 1, "a chain with no source providers has more than one layer");
        Judge.All(chain);
    }
}

/// <summary>Every judge and every output of a resolved chain.</summary>
internal static class Judge
{
    /// <summary>The verdict is taken under the policy the chain was walked with, so it is judged once.</summary>
    public static void All(ImageChain chain)
    {
        TrustReport report = TrustEvaluator.Evaluate(chain);
        FuzzTargets.RequireNoSwallowedException(report.Findings);
        FuzzTargets.Require(report.Layers.Length == chain.Layers.Length, "the report does not judge every layer");
        FuzzTargets.Require(report.IsSafe == (report.IsSafe && chain.IsComplete), "an incomplete chain was judged safe");
        if (LibvirtDiskXml.CanWrite(report, out _))
        {
            _ = LibvirtDiskXml.ToXml(report);
        }

        _ = QemuImgInfoJson.ToJson(chain);
    }
}

/// <summary>
/// Probe, read, follow and judge: the top image is probed, and every name it records resolves to the same bytes (so
/// chains, loops and depth all come from one input), then every policy judges the chain.
/// </summary>
internal static class ChainPath
{
    public static void Run(byte[] data)
    {
        ReadOnlyMemory<byte> bytes = data;
        var images = new Dictionary<string, ReadOnlyMemory<byte>>(StringComparer.Ordinal);
        foreach (string name in (string[])["/images/top.img", "/images/base.img", "/images/base.qcow2", "base.img", "base.qcow2", "/etc/passwd"])
        {
            images[name] = bytes;
        }

        var resolver = new ImageChainResolver(new ImageChainResolverOptions
        {
            SourceProviders = [new MemoryImageSourceProvider(images)],
            MaxDepth = 8,
            Policy = TrustPolicy.QemuCompatible,
        });

        _ = ImageFormatDetector.Detect(data.AsSpan(0, Math.Min(data.Length, ImageFormatDetector.ProbeLength)), "/images/top.img", data.Length);
        ReadOnlySpan<byte> head = data.AsSpan(0, Math.Min(data.Length, ImageFormatDetector.ThoroughHeadLength));
        ReadOnlySpan<byte> tail = data.AsSpan(Math.Max(0, data.Length - ImageFormatDetector.ThoroughTailLength));
        _ = ImageFormatDetector.DetectThorough(head, tail, data.Length, "/images/top.img");

        using var top = new MemoryImageSource("/images/top.img", bytes);
        ImageChain chain = resolver.ResolveAsync(top).AsTask().GetAwaiter().GetResult();
        FuzzTargets.RequireNoSwallowedException(chain.Findings);
        FuzzTargets.Require(chain.Layers.Length <= 9, $"the walk went {chain.Layers.Length} layers deep with a cap of 8");
        Judge.All(chain);
    }
}

/// <summary>
/// The upload gate over a chunking chosen by the input: byte 0 holds option bits, byte 1 the number of planned chunk
/// lengths (1 to 8), then one byte per length; the rest is the upload. The verdict must not depend on the chunking,
/// so the same bytes are inspected again in one chunk and the two inspections must agree.
/// </summary>
internal static class UploadPath
{
    public static void Run(byte[] input)
    {
        if (input.Length < 2)
        {
            return;
        }

        byte flags = input[0];
        int planLength = 1 + (input[1] % 8);
        if (input.Length < 2 + planLength)
        {
            return;
        }

        int[] plan = new int[planLength];
        for (int i = 0; i < planLength; i++)
        {
            // Small lengths are the interesting ones; the top half of the byte range gives whole sectors.
            byte b = input[2 + i];
            plan[i] = b < 128 ? b + 1 : (b - 127) * 512;
        }

        ReadOnlyMemory<byte> upload = input.AsMemory(2 + planLength);
        var options = new UploadInspectionOptions
        {
            DeclaredFormat = (flags & 1) != 0 ? (ImageFormat)(1 + ((flags >> 4) % 13)) : null,
            Name = (flags & 2) != 0 ? "/images/upload.img" : null,
            ComputeSha256 = (flags & 4) != 0,
            Policy = (flags & 8) != 0 ? TrustPolicy.Default : new TrustPolicy { Posture = TrustPosture.UntrustedImage, Callback = new TrustNamesUnder("/images/") },
        };

        string planned = Describe(Inspect(upload, plan, options));
        string whole = Describe(Inspect(upload, [Math.Max(1, upload.Length)], options));
        FuzzTargets.Require(planned == whole, $"the chunking [{string.Join(',', plan)}] changed the inspection:\n{planned}\nin one chunk:\n{whole}");
    }

    private static UploadInspection Inspect(ReadOnlyMemory<byte> upload, int[] plan, UploadInspectionOptions options)
    {
        var reader = new PlannedChunkPipeReader(upload, plan);
        UploadInspection inspection = ImageUploadInspector.InspectAsync(reader, options).AsTask().GetAwaiter().GetResult();
        FuzzTargets.RequireNoSwallowedException(inspection.Findings);
        FuzzTargets.Require(reader.Produced == upload.Length, "the gate stopped reading before the end of the upload");
        return inspection;
    }

    private static string Describe(UploadInspection inspection)
    {
        var text = new System.Text.StringBuilder();
        text.Append($"{inspection.Verdict} {inspection.Reason} {inspection.Format} {inspection.FormatSource} {inspection.Length} {inspection.VirtualSize} {inspection.Sha256}\n");
        foreach (ImageReference reference in inspection.References)
        {
            text.Append($"ref {reference.Role} {reference.Kind} {reference.StoredName}\n");
        }

        foreach (ChainFinding finding in inspection.Findings)
        {
            text.Append($"finding {finding.Code} {finding.Message}\n");
        }

        return text.ToString();
    }
}

/// <summary>
/// Trusts names spelled under a directory that need not exist on this machine (trusted roots must exist; the
/// images here live in memory).
/// </summary>
internal sealed class TrustNamesUnder(string prefix) : IImageTrust
{
    public bool IsTrusted(ImageReference reference, string? canonicalPath) =>
        reference.FullName?.StartsWith(prefix, StringComparison.Ordinal) == true && !reference.FullName.Contains("/../", StringComparison.Ordinal);
}
