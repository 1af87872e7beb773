using System;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Formats;

/// <summary>
/// One format's plug into detection, naming and the chain resolver. A new format is a folder with its header
/// parser and one of these, plus one line in <see cref="FormatReaders"/>; everything the rest of the library
/// needs to know about a format is asked of its reader, so nothing outside the folder names the format.
/// </summary>
internal interface IImageFormatReader
{
    /// <summary>The format read.</summary>
    ImageFormat Format { get; }

    /// <summary>qemu 7.2's block-driver name (<c>qemu-img info</c>'s <c>format</c>, what <c>-f</c> and a recorded backing format accept).</summary>
    string QemuName { get; }

    /// <summary>libvirt's storage-format name for the format, or <see langword="null"/> when libvirt's disk XML has none.</summary>
    string? LibvirtName { get; }

    /// <summary>Whether qemu 7.2 opens the image underneath for this format (its driver supports a backing file), so a
    /// parent the header names is shown by <c>qemu-img info</c> and can be written as libvirt's backing store.</summary>
    bool QemuOpensBacking { get; }

    /// <summary>
    /// Whether <c>qemu-img rebase -u -F</c> can record <paramref name="backingFormat"/> as the backing format in this
    /// format's header (qcow2 records any name; QED has only a flag that says the backing file is raw).
    /// </summary>
    bool CanRecordBackingFormat(ImageFormat backingFormat);

    /// <summary>Whether qemu's driver answers <c>bdrv_get_info</c> by asking the protocol underneath (so over a protocol
    /// without an answer, qemu-img prints no <c>dirty-flag</c>).</summary>
    bool InfoComesFromProtocol { get; }

    /// <summary>The signatures thorough detection looks for, this format's own.</summary>
    ImmutableArray<SignatureRule> Signatures { get; }

    /// <summary>
    /// qemu 7.2's probe score for this driver on the first 512 bytes (zero-padded) and the file name:
    /// 0 for no, 100 for a magic match, 1 or 2 for the weak guesses (raw, cloop, dmg).
    /// </summary>
    int Probe(ReadOnlySpan<byte> head, string? fileName);

    /// <summary>Reads the image's header facts and references.</summary>
    ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken);
}
