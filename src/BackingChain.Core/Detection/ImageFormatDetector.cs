using System;
using System.Collections.Immutable;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Formats;
using BackingChain.Formats.Raw;

namespace BackingChain.Detection;

/// <summary>
/// qemu 7.2's format probe: every driver scores the first 512 bytes (zero-padded) and the file name, and
/// the strictly highest score wins. The content is never trusted to name a format safely: the result of a
/// probe is recorded as <see cref="FormatSource.Probed"/> and judged by the trust policy.
/// </summary>
public static class ImageFormatDetector
{
    /// <summary>The bytes qemu's probe looks at (BLOCK_PROBE_BUF_SIZE).</summary>
    internal const int ProbeLength = 512;

    /// <summary>The highest score a probe gives (qemu's drivers score 0 to 100).</summary>
    internal const int MaxProbeScore = 100;

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

        // qemu probes a 512-byte buffer, zero-filled past the end of a shorter file: only a short head is copied.
        Span<byte> padded = head.Length >= ProbeLength ? default : stackalloc byte[ProbeLength];
        scoped ReadOnlySpan<byte> buffer = head[..Math.Min(head.Length, ProbeLength)];
        if (!padded.IsEmpty)
        {
            padded.Clear();
            head.CopyTo(padded);
            buffer = padded;
        }

        ImageFormat winner = ImageFormat.Raw;
        int best = 0;
        foreach (IImageFormatReader reader in FormatReaders.All)
        {
            int score = reader.Probe(buffer, fileName);
            if (score > best)
            {
                best = score;
                winner = reader.Format;

                // qemu's highest score, which the first reader to reach keeps (ties go to the earlier driver): the
                // readers after it cannot change the answer, so a qcow2 layer asks four probes, not thirteen.
                if (best >= MaxProbeScore)
                {
                    break;
                }
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
    public const int ThoroughHeadLength = RawFormatReader.Iso9660DescriptorOffset + 2048;

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
        if (imageLength > 0)
        {
            Span<byte> probe = stackalloc byte[ProbeLength];
            probe.Clear();
            head[..Math.Min(head.Length, ProbeLength)].CopyTo(probe);
            var input = new SignatureInput(head, probe, tail, imageLength, qemu);

            // Head first (what qemu sees, then what it misses), then tail, then name: the order people read them in.
            CollectSignatures(in input, SignatureLocation.Head, seenByQemu: true, found);
            CollectSignatures(in input, SignatureLocation.Head, seenByQemu: false, found);
            CollectSignatures(in input, SignatureLocation.Tail, seenByQemu: null, found);
            CollectSignatures(in input, SignatureLocation.FileName, seenByQemu: null, found);
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

    /// <summary>
    /// Runs every reader's rules for one location, in registry order. A signature qemu does not see is noted only
    /// for a format not already shown (a dynamic VHD's head footer makes its tail footer news to no one).
    /// </summary>
    private static void CollectSignatures(in SignatureInput input, SignatureLocation location, bool? seenByQemu, ImmutableArray<FormatSignature>.Builder found)
    {
        foreach (IImageFormatReader reader in FormatReaders.All)
        {
            foreach (SignatureRule rule in reader.Signatures)
            {
                if (rule.Location != location || (seenByQemu is bool seen && rule.SeenByQemu != seen)
                    || (!rule.SeenByQemu && Contains(found, reader.Format)))
                {
                    continue;
                }

                bool matched = rule.Match is null ? reader.Probe(input.Probe, null) > 0 : rule.Match(in input);
                if (matched)
                {
                    found.Add(new FormatSignature(reader.Format, rule.Location, rule.SeenByQemu, rule.Description));
                }
            }
        }
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
}
