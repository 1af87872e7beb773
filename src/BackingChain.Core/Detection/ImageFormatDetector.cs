using System;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Formats;
using BackingChain.Formats.Dmg;
using BackingChain.Formats.Luks;
using BackingChain.Formats.Vpc;
using BackingChain.Sources;

namespace BackingChain.Detection;

/// <summary>
/// qemu 7.2's format probe: every driver scores the first 512 bytes (zero-padded) and the file name, and
/// the strictly highest score wins. The content is never trusted to name a format safely: the result of a
/// probe is recorded as <see cref="Chain.FormatSource.Probed"/> and judged by the trust policy.
/// </summary>
public static class ImageFormatDetector
{
    /// <summary>The bytes qemu's probe looks at (BLOCK_PROBE_BUF_SIZE).</summary>
    public const int ProbeLength = 512;

    /// <summary>Returns the format qemu 7.2 would probe for these leading bytes.</summary>
    /// <param name="head">The image's first bytes; fewer than 512 are padded with zeros, as qemu's read does.</param>
    /// <param name="fileName">The file name; qemu's dmg probe looks only at a <c>.dmg</c> suffix.</param>
    /// <param name="imageLength">The image length when known; an empty image is raw without probing.</param>
    /// <returns>The winning format (raw when nothing else matches).</returns>
    public static ImageFormat Detect(ReadOnlySpan<byte> head, string? fileName = null, long? imageLength = null)
    {
        if (imageLength == 0)
        {
            return ImageFormat.Raw;
        }

        Span<byte> buffer = stackalloc byte[ProbeLength];
        buffer.Clear();
        head[..Math.Min(head.Length, ProbeLength)].CopyTo(buffer);

        ImageFormat winner = ImageFormat.Raw;
        int best = 0;
        foreach (IImageFormatReader reader in FormatReaders.All)
        {
            int score = reader.Probe(buffer, fileName);
            if (score > best)
            {
                best = score;
                winner = reader.Format;
            }
        }

        return winner;
    }

    /// <summary>Reads the first 512 bytes of a source and probes them.</summary>
    /// <param name="source">The image.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The winning format.</returns>
    public static async ValueTask<ImageFormat> DetectAsync(IImageSource source, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        byte[] head = new byte[ProbeLength];
        int read = await source.ReadAtAsync(0, head, cancellationToken).ConfigureAwait(false);
        return Detect(head.AsSpan(0, read), source.Name, source.Length);
    }

    /// <summary>The leading bytes thorough detection reads: through the first ISO 9660 volume descriptor (sector 16 of 2048 bytes).</summary>
    public const int ThoroughHeadLength = Iso9660DescriptorOffset + 2048;

    /// <summary>Where an ISO 9660 image keeps its first volume descriptor: after a 32 KiB system area that the standard leaves free.</summary>
    private const int Iso9660DescriptorOffset = 16 * 2048;

    /// <summary>The trailing bytes thorough detection reads (a VHD footer and qemu's DMG trailer window fit).</summary>
    public const int ThoroughTailLength = 1024;

    /// <summary>
    /// Looks for every known signature in the head and the tail of an image, instead of only qemu's first
    /// 512 bytes: fixed VHDs (footer at the end), LUKS2 headers, DMG trailers by content, VMDK descriptors that
    /// qemu's probe misses, and polyglots, which are reported rather than resolved.
    /// </summary>
    /// <param name="head">The image's first bytes (up to <see cref="ThoroughHeadLength"/>).</param>
    /// <param name="tail">The image's last bytes (up to <see cref="ThoroughTailLength"/>); equal to <paramref name="head"/> for small images.</param>
    /// <param name="imageLength">The image length in bytes.</param>
    /// <param name="fileName">The file name, for qemu's name-based dmg probe.</param>
    /// <returns>The signatures found, qemu's choice and the verdict.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="imageLength"/> is negative or shorter than <paramref name="tail"/>.</exception>
    public static ThoroughDetection DetectThorough(ReadOnlySpan<byte> head, ReadOnlySpan<byte> tail, long imageLength, string? fileName = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(imageLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(imageLength, tail.Length);
        ImageFormat qemu = Detect(head, fileName, imageLength);
        var found = ImmutableArray.CreateBuilder<FormatSignature>();

        Span<byte> probe = stackalloc byte[ProbeLength];
        probe.Clear();
        head[..Math.Min(head.Length, ProbeLength)].CopyTo(probe);
        foreach (IImageFormatReader reader in FormatReaders.All)
        {
            if (reader.Format is ImageFormat.Raw or ImageFormat.Dmg || imageLength == 0)
            {
                continue;
            }

            if (reader.Probe(probe, null) > 0)
            {
                found.Add(new FormatSignature(reader.Format, SignatureLocation.Head, true, $"{reader.Format.GetQemuName()} signature at the start"));
            }
        }

        if (Luks2Header.TryParse(head, out Luks2Header luks2, out _) && !luks2.IsSecondary)
        {
            found.Add(new FormatSignature(ImageFormat.Luks, SignatureLocation.Head, false, "LUKS2 header (qemu 7.2 probes it as raw and cannot open it)"));
        }

        if (!Contains(found, ImageFormat.Vmdk) && LooksLikeVmdkDescriptor(head))
        {
            found.Add(new FormatSignature(ImageFormat.Vmdk, SignatureLocation.Head, false, "VMDK text descriptor that qemu's probe does not recognise (a blank line or other text before version=)"));
        }

        if (IsIso9660(head))
        {
            // qemu has no ISO driver and reads an ISO as raw, but other tools (and OpenStack's inspector) see a disc:
            // inside another format's header it makes the file a polyglot.
            found.Add(new FormatSignature(ImageFormat.Raw, SignatureLocation.Head, false, "ISO 9660 volume descriptor at byte 32768"));
        }

        if (tail.Length >= VhdLayout.FooterSize && VhdFooter.TryParse(tail[^VhdLayout.FooterSize..], out _, out _) && !Contains(found, ImageFormat.Vpc))
        {
            found.Add(new FormatSignature(ImageFormat.Vpc, SignatureLocation.Tail, false, "VHD footer at the end of the file (a fixed VHD; qemu probes it as raw)"));
        }

        if (FindDmgTrailer(tail, imageLength))
        {
            found.Add(new FormatSignature(ImageFormat.Dmg, SignatureLocation.Tail, false, "UDIF (DMG) trailer near the end of the file"));
        }

        if (qemu == ImageFormat.Dmg)
        {
            found.Add(new FormatSignature(ImageFormat.Dmg, SignatureLocation.FileName, true, "file name ends in .dmg (qemu's dmg probe ignores the content)"));
        }

        ImageFormat content = ImageFormat.Raw;
        bool polyglot = false;
        bool disc = false;
        foreach (FormatSignature signature in found)
        {
            if (signature.Location == SignatureLocation.FileName)
            {
                continue;
            }

            if (signature.Format == ImageFormat.Raw)
            {
                // An ISO 9660 disc is raw to qemu; it counts as a second meaning only beside another format.
                disc = true;
                polyglot |= content != ImageFormat.Raw;
            }
            else if (content == ImageFormat.Raw)
            {
                content = signature.Format;
                polyglot |= disc;
            }
            else if (content != signature.Format)
            {
                polyglot = true;
            }
        }

        return new ThoroughDetection(qemu, found.ToImmutable(), polyglot ? ImageFormat.Unknown : content, polyglot);
    }

    /// <summary>A primary, supplementary or terminating ISO 9660 volume descriptor: a type byte, <c>CD001</c>, version 1.</summary>
    private static bool IsIso9660(ReadOnlySpan<byte> head)
    {
        if (head.Length < Iso9660DescriptorOffset + 7)
        {
            return false;
        }

        ReadOnlySpan<byte> descriptor = head.Slice(Iso9660DescriptorOffset, 7);
        return descriptor[1..6].SequenceEqual("CD001"u8) && descriptor[6] == 1 && descriptor[0] is 0 or 1 or 2 or 3 or 255;
    }

    /// <summary>Reads the head and the tail of a source and runs <see cref="DetectThorough(ReadOnlySpan{byte}, ReadOnlySpan{byte}, long, string?)"/>.</summary>
    /// <param name="source">The image.</param>
    /// <param name="cancellationToken">Cancels the reads.</param>
    /// <returns>The signatures found, qemu's choice and the verdict.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="source"/> is <see langword="null"/>.</exception>
    public static async ValueTask<ThoroughDetection> DetectThoroughAsync(IImageSource source, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        byte[] head = new byte[(int)Math.Min(ThoroughHeadLength, source.Length)];
        int headRead = await ReadFullyAsync(source, 0, head, cancellationToken).ConfigureAwait(false);
        int tailLength = (int)Math.Min(ThoroughTailLength, source.Length);
        byte[] tail = new byte[tailLength];
        int tailRead = await ReadFullyAsync(source, source.Length - tailLength, tail, cancellationToken).ConfigureAwait(false);
        return DetectThorough(head.AsSpan(0, headRead), tail.AsSpan(0, tailRead), source.Length, source.Name);
    }

    private static async ValueTask<int> ReadFullyAsync(IImageSource source, long offset, byte[] buffer, CancellationToken cancellationToken)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int read = await source.ReadAtAsync(offset + done, buffer.AsMemory(done), cancellationToken).ConfigureAwait(false);
            if (read <= 0)
            {
                break;
            }

            done += read;
        }

        return done;
    }

    private static bool Contains(ImmutableArray<FormatSignature>.Builder found, ImageFormat format)
    {
        foreach (FormatSignature signature in found)
        {
            if (signature.Format == format)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A text descriptor: "# Disk DescriptorFile" or both a version= and a createType= line near the start, in plain text.</summary>
    private static bool LooksLikeVmdkDescriptor(ReadOnlySpan<byte> head)
    {
        ReadOnlySpan<byte> text = CString.Of(head[..Math.Min(head.Length, 1024)]);

        return text.IndexOf("# Disk DescriptorFile"u8) >= 0
            || (text.IndexOf("version="u8) >= 0 && text.IndexOf("createType="u8) >= 0);
    }

    /// <summary>qemu's "koly" search, over the tail (zero-padded past the end), then a trailer consistent with its position.</summary>
    private static bool FindDmgTrailer(ReadOnlySpan<byte> tail, long imageLength)
    {
        if (imageLength < DmgLayout.MinimumFileLength)
        {
            return false;
        }

        long tailStart = imageLength - tail.Length;
        (long windowOffset, int windowLength) = DmgTrailer.GetSearchWindow(imageLength);
        Span<byte> window = stackalloc byte[DmgLayout.SearchWindow + DmgLayout.TrailerSize];
        window.Clear();
        for (int i = 0; i < window.Length; i++)
        {
            long at = windowOffset + i - tailStart;
            if (at >= 0 && at < tail.Length)
            {
                window[i] = tail[(int)at];
            }
            else if (windowOffset + i < tailStart)
            {
                return false; // the tail does not cover qemu's window
            }
        }

        long trailer = DmgTrailer.FindTrailer(window[..windowLength], windowOffset);
        if (trailer < 0)
        {
            return false;
        }

        int start = (int)(trailer - windowOffset);
        return DmgTrailer.TryParse(window.Slice(start, DmgLayout.TrailerSize), out DmgTrailer parsed, out _)
            && parsed.Validate(trailer) == HeaderError.None
            && BinaryPrimitives.ReadUInt32BigEndian(window.Slice(start + DmgLayout.HeaderSizeOffset)) == DmgLayout.TrailerSize;
    }
}
