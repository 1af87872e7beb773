using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Internal;
using BackingChain.Sources;

namespace BackingChain.Interop;

/// <summary>
/// Predicts what libvirt 9.0's qemu driver does with one disk when the domain starts (qemuDomainDetermineDiskChain,
/// virStorageSourceGetMetadata): the layers the XML spells out are used as given; below the last one, unless the
/// chain is terminated, libvirt reads each header as <see cref="LibvirtHeader"/> models, probes a backing image whose
/// format is not recorded (or recorded under a name libvirt does not know) and refuses a probed image that names a
/// backing file (except below a QED image, whose probe it accepts); it then tells qemu that chain explicitly. The chain found is compared with the images' chain (the
/// walk's, as qemu reads the images), and every difference is a finding.
/// </summary>
/// <remarks>
/// Only files the walk itself opened are read again here (the first 0x8200 bytes, the identity checked against the
/// walk's): a name the trust gate refused is never opened for the prediction, which then ends as
/// <see cref="LibvirtOutcome.NotPredicted"/>. Messages are libvirt's (9.0) without the <c>(as uid:N, gid:N)</c> part,
/// which depends on the host's qemu user.
/// </remarks>
internal sealed class LibvirtPredictor
{
    /// <summary>libvirt's depth bound for the walk (QEMU_DOMAIN_STORAGE_SOURCE_CHAIN_MAX_DEPTH) and for the whole chain.</summary>
    private const int MaxDepth = 200;

    private readonly ParsedDisk _disk;
    private readonly ImageChain _chain;
    private readonly List<LibvirtPredictedLayer> _layers = [];
    private readonly ImmutableArray<ChainFinding>.Builder _findings = ImmutableArray.CreateBuilder<ChainFinding>();

    /// <summary>Why libvirt saw no backing file in the last layer of its chain, when it gave up on a header.</summary>
    private string? _lastNotRead;

    /// <summary>Per layer of libvirt's chain: whether libvirt probed its format, and what the image above recorded.</summary>
    private readonly List<(bool Probed, string? Recorded)> _how = [];

    private LibvirtPredictor(ParsedDisk disk, ImageChain chain)
    {
        _disk = disk;
        _chain = chain;
    }

    public static ValueTask<LibvirtPrediction> PredictAsync(ParsedDisk disk, ImageChain chain, CancellationToken cancellationToken) =>
        new LibvirtPredictor(disk, chain).RunAsync(cancellationToken);

    private async ValueTask<LibvirtPrediction> RunAsync(CancellationToken cancellationToken)
    {
        ImmutableArray<LibvirtDiskLayer> xml = _disk.Layers;
        string[] formats = new string[xml.Length];
        for (int i = 0; i < xml.Length; i++)
        {
            string? format = xml[i].Format ?? (i == 0 ? "raw" : null);
            if (!LibvirtHeader.IsKnown(format))
            {
                return Refused(i, i == 0 ? $"unsupported configuration: unknown driver format value '{format}'" : $"XML error: unknown storage source format '{format}'");
            }

            string? invalid = format switch
            {
                "cow" => "unsupported configuration: 'cow' storage format is not supported",
                "iso" when i == 0 => "unsupported configuration: storage format 'iso' is not directly supported by QEMU, use 'raw' instead",
                "dir" => "unsupported configuration: 'directory' storage format is not directly supported by QEMU, use 'dir' disk type instead",
                "fat" when xml[i].SourceType != "dir" => "unsupported configuration: storage format 'fat' is supported only with 'dir' storage type",
                _ => null,
            };
            if (invalid is not null)
            {
                return Refused(i, invalid);
            }

            formats[i] = format!;
            _layers.Add(new LibvirtPredictedLayer(xml[i].ToString(), format!, isExplicit: true));
            _how.Add((false, null));
        }

        // The spelled-out layers are used as given; one that is missing stops the domain.
        int read = _chain.Layers.Length;
        if (read < xml.Length)
        {
            LibvirtDiskLayer layer = xml[read];
            if (!layer.IsLocal)
            {
                // libvirt hands network storage to qemu as written; nothing here reads it.
            }
            else if (_chain.Ending == ChainEnding.Missing)
            {
                bool walkedFrom = !_disk.IsTerminated && read == xml.Length - 1;
                return Refused(read, walkedFrom
                    ? $"Cannot access storage file '{layer.Path}': No such file or directory"
                    : $"Path '{layer.Path}' is not accessible: No such file or directory");
            }
            else if (_chain.Ending == ChainEnding.Malformed && _chain.UnreadLayer is { } unread)
            {
                return Refused(read, $"qemu cannot open '{layer.Path}' as {LibvirtHeader.QemuDriver(formats[read])}: {unread.Message}");
            }
            else
            {
                return NotPredicted($"'{layer}' was not read ({_chain.ErrorMessage ?? _chain.Ending.ToString()})");
            }
        }

        bool terminated = true;
        LibvirtDiskLayer last = xml[^1];
        if (!_disk.IsTerminated)
        {
            if (!last.IsLocal)
            {
                // libvirt walks only local storage; below network storage qemu opens what the header says.
                terminated = false;
            }
            else if (LibvirtHeader.CanHaveBacking(formats[^1]))
            {
                LibvirtPrediction? stop = await WalkAsync(last.Path!, formats[^1], cancellationToken).ConfigureAwait(false);
                if (stop is not null)
                {
                    return stop;
                }
            }
        }

        return Judge(terminated);
    }

    /// <summary>libvirt's walk from the last spelled-out layer; <see langword="null"/> when it reaches the end of the chain.</summary>
    private async ValueTask<LibvirtPrediction?> WalkAsync(string path, string format, CancellationToken cancellationToken)
    {
        string? parentPath = null;
        string? parentRaw = null;
        bool probe = false;
        bool probeAccepted = false;
        string? recorded = null;
        string? encrypted = null;
        for (int depth = 1; ; depth++)
        {
            if (depth > MaxDepth)
            {
                return Refused(_layers.Count, $"internal error: backing store for {parentPath} is self-referential or too deeply nested");
            }

            if (format == "none" && !probe)
            {
                return Refused(_layers.Count, "unknown storage file meta->format 0: Invalid argument");
            }

            (byte[]? header, string? notRead, bool missing) = await ReadHeaderAsync(path, cancellationToken).ConfigureAwait(false);
            if (missing)
            {
                return Refused(_layers.Count, $"Cannot access backing file '{path}' of storage file '{parentPath}': No such file or directory");
            }

            if (header is null)
            {
                return NotPredicted(notRead!);
            }

            string actual = probe ? LibvirtHeader.Probe(header) : format;
            LibvirtHeaderFacts facts = LibvirtHeader.Read(actual, header);
            if (probe && !probeAccepted && facts.Backing is not null)
            {
                return Refused(_layers.Count, $"Requested operation is not valid: format of backing image '{parentRaw}' of image '{parentPath}' was not specified in the image metadata (See https://libvirt.org/kbase/backing_chains.html for troubleshooting)");
            }

            encrypted ??= facts.Encrypted ? path : null;
            if (depth > 1)
            {
                // A detected ISO image is given to qemu as raw.
                _layers.Add(new LibvirtPredictedLayer(path, actual == "iso" ? "raw" : actual, isExplicit: false));
                _how.Add((probe, recorded));
            }

            if (facts.Backing is null)
            {
                _lastNotRead = facts.NotRead;
                break;
            }

            if (!IsFileName(facts.Backing))
            {
                return NotPredicted($"'{path}' names '{facts.Backing}', storage libvirt hands qemu as it is: not modelled");
            }

            parentRaw = facts.Backing;
            parentPath = path;
            path = Join(path, facts.Backing);
            format = facts.BackingFormat ?? "";
            probe = facts.BackingFormat is null;
            probeAccepted = facts.ProbeAccepted;
            recorded = RecordedFormat(_layers.Count);
        }

        if (_layers.Count > MaxDepth)
        {
            return Refused(MaxDepth, $"unsupported configuration: backing chains more than {MaxDepth} layers deep are not supported for disk '{_disk.Target}'");
        }

        // libvirt notes the encryption it finds and then has no engine for it when it builds qemu's command line.
        return encrypted is not null ? Refused(_layers.Count - 1, "internal error: Unexpected enum value 0 for virStorageEncryptionEngine") : null;
    }

    /// <summary>The backing format the images record for the layer at <paramref name="index"/> of the walk's chain (qemu's name), or <see langword="null"/>.</summary>
    private string? RecordedFormat(int index) =>
        index > 0 && index - 1 < _chain.Layers.Length ? _chain.Layers[index - 1].Backing?.RecordedFormat : null;

    /// <summary>libvirt's chain compared with the images': every difference a finding.</summary>
    private LibvirtPrediction Judge(bool terminated)
    {
        ImmutableArray<ChainLayer> images = _chain.Layers;
        bool refused = false;
        string? reason = null;
        for (int i = 0; i < _layers.Count; i++)
        {
            LibvirtPredictedLayer layer = _layers[i];
            string driver = LibvirtHeader.QemuDriver(layer.Format) ?? layer.Format;
            string? image = i < images.Length ? images[i].Format.GetQemuName()
                : i == images.Length && _chain.UnreadLayer is { } unread ? unread.Format.GetQemuName() : null;
            if (image is not null && image != driver && !layer.IsExplicit)
            {
                (bool probed, string? recorded) = _how[i];
                string why = !probed ? $"recorded as '{layer.Format}'"
                    : recorded is not null && !LibvirtHeader.IsKnown(recorded) ? $"probed: libvirt has no format named '{recorded}'"
                    : i > 0 && _layers[i - 1].Format == "vmdk" ? "probed: libvirt probes a VMDK's parent"
                    : "probed";
                string imageSays = i < images.Length ? $"the image is {image}" : $"qemu-img cannot read it as {image}: {_chain.UnreadLayer!.Message}";
                Add(LibvirtFindingCodes.FormatDiffers, i, $"libvirt {LibvirtPrediction.LibvirtVersion} gives qemu '{layer.Source}' as {driver} ({why}); {imageSays}");
            }

            if (i < images.Length && !layer.IsExplicit || i == 0)
            {
                refused |= DataFiles(i, ref reason);
            }
        }

        // libvirt's chain ends where the images' goes on: a backing name libvirt did not read.
        int end = _layers.Count - 1;
        if (terminated && !_disk.IsTerminated && end < images.Length && images[end].Backing is { } backing && !_layers[end].IsExplicit | end == _disk.Layers.Length - 1)
        {
            Add(LibvirtFindingCodes.BackingNotRead, end, $"libvirt {LibvirtPrediction.LibvirtVersion} reads no backing file in '{_layers[end].Source}' ({_lastNotRead ?? "it sees none"}) and tells qemu it has none, but the image names '{backing.StoredName}'");
        }

        if (refused)
        {
            return Done(LibvirtOutcome.Refused, reason, terminated);
        }

        return Done(_findings.Count == 0 ? LibvirtOutcome.Starts : LibvirtOutcome.StartsWithOtherChain, null, terminated);
    }

    /// <summary>
    /// libvirt 9.0 does not know qcow2 external data files: qemu opens the name the header records itself, as its own
    /// user, from its working directory (<c>/</c>) when the name is relative. Returns whether that fails.
    /// </summary>
    private bool DataFiles(int index, ref string? reason)
    {
        if (index >= _chain.Layers.Length)
        {
            return false;
        }

        bool fails = false;
        foreach (ImageReference reference in _chain.Layers[index].References)
        {
            if (reference.Role != ReferenceRole.ExternalDataFile)
            {
                continue;
            }

            string name = reference.StoredName;
            string? failure = null;
            if (!name.StartsWith('/'))
            {
                failure = $"qemu cannot open the data file '{name}' of '{_layers[index].Source}': libvirt {LibvirtPrediction.LibvirtVersion} does not pass it, and qemu looks the relative name up from its working directory (/)";
            }
            else if (!OthersMayOpen(index, reference, writable: index == 0))
            {
                failure = $"qemu cannot open the data file '{name}' of '{_layers[index].Source}': libvirt {LibvirtPrediction.LibvirtVersion} does not give qemu's user access to it";
            }

            Add(LibvirtFindingCodes.DataFileNotCarried, index, failure ?? $"libvirt {LibvirtPrediction.LibvirtVersion} does not know the data file '{name}' of '{_layers[index].Source}': it is not in the live XML, and qemu opens it itself, as its own user");
            if (failure is not null && !fails)
            {
                fails = true;
                reason ??= failure;
                Add(LibvirtFindingCodes.Refuses, index, failure);
            }
        }

        return fails;
    }

    /// <summary>Whether qemu's user (not the file's owner or group, as libvirt does not relabel it) may open a data file the walk opened.</summary>
    private bool OthersMayOpen(int index, ImageReference reference, bool writable)
    {
        foreach (ReferenceDecision decision in _chain.Decisions)
        {
            if (decision.LayerIndex == index && ReferenceEquals(decision.Reference, reference) && decision.Outcome == ReferenceOutcome.Opened
                && UnixFileStatus.TryGet(reference.FullName ?? reference.StoredName, out UnixFileStatus status))
            {
                uint need = writable ? 6u : 4u;
                return (status.Mode & need) == need;
            }
        }

        return false;
    }

    /// <summary>The first bytes libvirt reads of <paramref name="path"/>, read again only when the walk opened that very file.</summary>
    private async ValueTask<(byte[]? Header, string? NotRead, bool Missing)> ReadHeaderAsync(string path, CancellationToken cancellationToken)
    {
        string wanted = Normalize(path);
        ImageSourceIdentity? identity = null;
        bool opened = false;
        foreach (ChainLayer layer in _chain.Layers)
        {
            if (Normalize(layer.FileName) == wanted)
            {
                identity = layer.Identity;
                opened = true;
                break;
            }
        }

        if (!opened && _chain.Ending == ChainEnding.Malformed && _chain.UnreadLayer is { } unread && Normalize(UnreadPath(unread)) == wanted)
        {
            opened = true;
        }

        if (!opened)
        {
            foreach (ReferenceDecision decision in _chain.Decisions)
            {
                if (decision.Outcome == ReferenceOutcome.Missing && decision.Reference.FullName is { } full && Normalize(full) == wanted)
                {
                    return (null, null, true);
                }
            }

            return (null, $"libvirt would read '{path}', which the walk did not open", false);
        }

        try
        {
            await using FileImageSource source = FileImageSource.Open(path);
            if (identity is { } expected && source.Identity != expected)
            {
                return (null, $"'{path}' changed since the walk read it", false);
            }

            byte[] header = new byte[(int)Math.Min(source.Length, LibvirtHeader.MaxHeader)];
            int done = 0;
            while (done < header.Length)
            {
                int n = await source.ReadAtAsync(done, header.AsMemory(done), cancellationToken).ConfigureAwait(false);
                if (n <= 0)
                {
                    break;
                }

                done += n;
            }

            return (done == header.Length ? header : header[..done], null, false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, $"'{path}' could not be read again: {ex.Message}", false);
        }
    }

    /// <summary>The unread layer's path: its name joined to the directory of the layer above when relative, as qemu and libvirt join it.</summary>
    private string UnreadPath(UnreadLayer unread) =>
        unread.FileName.StartsWith('/') || _chain.Layers.IsEmpty ? unread.FileName : Join(_chain.Layers[^1].FileName, unread.FileName);

    /// <summary>libvirt's test for a file name (virStorageIsFile): a <c>:</c> before any <c>/</c> makes it a protocol name.</summary>
    private static bool IsFileName(string name)
    {
        int colon = name.IndexOf(':');
        int slash = name.IndexOf('/');
        return colon < 0 || (slash >= 0 && slash < colon);
    }

    /// <summary>libvirt's join of a relative backing name: the directory of the image, a slash, the name; nothing normalised.</summary>
    private static string Join(string image, string backing)
    {
        if (backing.StartsWith('/'))
        {
            return backing;
        }

        int slash = image.LastIndexOf('/');
        return slash < 0 ? "./" + backing : slash == 0 ? "/" + backing : string.Concat(image.AsSpan(0, slash), "/", backing);
    }

    /// <summary>Two spellings that name one path without looking anything up: repeated slashes and <c>.</c> segments dropped.</summary>
    private static string Normalize(string path)
    {
        var parts = new List<string>();
        foreach (string part in path.Split('/'))
        {
            if (part.Length > 0 && part != ".")
            {
                parts.Add(part);
            }
        }

        return (path.StartsWith('/') ? "/" : "") + string.Join('/', parts);
    }

    private void Add(string code, int layer, string message) => _findings.Add(new ChainFinding(code, layer, message));

    private LibvirtPrediction Refused(int layer, string reason)
    {
        Add(LibvirtFindingCodes.Refuses, layer, reason);
        return Done(LibvirtOutcome.Refused, reason, terminated: false);
    }

    private LibvirtPrediction NotPredicted(string reason) => Done(LibvirtOutcome.NotPredicted, reason, terminated: false);

    private LibvirtPrediction Done(LibvirtOutcome outcome, string? reason, bool terminated) =>
        new(outcome, reason, [.. _layers], terminated, _findings.ToImmutable());
}
