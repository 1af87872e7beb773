using System;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Formats;
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
}
