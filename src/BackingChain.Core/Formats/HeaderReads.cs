using System;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Formats;

/// <summary>
/// Header reads with one end-of-file rule, qemu's block layer's: bytes past the end of the file read as zeros.
/// Format readers that mirror qemu's open checks use this so that a truncated image fails (or passes) the same
/// check it does in qemu. Whether a header that runs past the end is then refused is the parser's own check
/// (qemu's drivers differ), never a reader's guess.
/// </summary>
internal static class HeaderReads
{
    /// <summary>The file length as qemu's protocol layer reports it: rounded up to whole 512-byte sectors.</summary>
    public static long RoundedLength(long length) => length > long.MaxValue - 511 ? length : (length + 511) & ~511L;

    /// <summary>
    /// Reads exactly <paramref name="length"/> bytes at <paramref name="offset"/>, zero-filled past the end of
    /// the image. Returns <see langword="null"/> when the request itself is impossible (offset beyond 2^63), as
    /// qemu's read fails.
    /// </summary>
    public static async ValueTask<byte[]?> ReadPaddedAsync(LayerReadContext context, ulong offset, int length, CancellationToken cancellationToken)
    {
        if (length < 0 || length > ImageReadLimits.MaxMetadataRead || offset > (ulong)(long.MaxValue - length))
        {
            return null;
        }

        byte[] buffer = new byte[length];
        long start = (long)offset;
        if (start < context.Source.Length && length > 0)
        {
            if (start == 0 && length <= context.Head.Length)
            {
                context.Head.Span[..length].CopyTo(buffer);
            }
            else if (context.Coalesces)
            {
                // A remote layer: through the layer's window, so a table read entry by entry costs few requests.
                ReadOnlyMemory<byte> read = await context.ReadAsync(start, length, cancellationToken).ConfigureAwait(false);
                read.CopyTo(buffer);
            }
            else
            {
                int want = (int)Math.Min(length, context.Source.Length - start);
                int done = 0;
                while (done < want)
                {
                    int read = await context.Source.ReadAtAsync(start + done, buffer.AsMemory(done, want - done), cancellationToken).ConfigureAwait(false);
                    if (read <= 0)
                    {
                        break;
                    }

                    done += read;
                }
            }
        }

        return buffer;
    }

    /// <summary>
    /// Parses the header at the start of the image, reading more for as long as the parser asks for bytes it has
    /// not been given. The parser sees <c>dataReachesEndOfFile</c> once the data covers the file or a read stops
    /// growing it (a source that returns less than asked mid-file ends the loop rather than spinning), and then
    /// counts the missing bytes as zeros.
    /// </summary>
    /// <param name="context">The layer being read.</param>
    /// <param name="parse">The format's header parser.</param>
    /// <param name="contiguousLimit">
    /// The most the helper reads from the start; a parser that asks for more gets back <see cref="HeaderError.Truncated"/>
    /// with its <see cref="ParsedHeader{THeader}.BytesNeeded"/>, for the reader to fetch the far part on its own.
    /// </param>
    /// <param name="cancellationToken">Cancels the reads.</param>
    public static async ValueTask<ParsedHeader<THeader>> ReadUntilParsedAsync<THeader>(
        LayerReadContext context, HeaderParser<THeader> parse, long contiguousLimit, CancellationToken cancellationToken)
    {
        ReadOnlyMemory<byte> data = context.Head;
        bool reachesEnd = context.HeadIsWholeImage;
        while (true)
        {
            if (TryParse(context, parse, contiguousLimit, data, reachesEnd, out ParsedHeader<THeader> parsed))
            {
                return parsed;
            }

            // At least twice what was read before (within the limits): a parser that finds its structures one by one
            // (qcow2's header extensions) then costs a logarithmic number of reads, not one per structure, each
            // re-reading everything before it.
            int before = data.Length;
            long more = Math.Min(2L * before, Math.Min(contiguousLimit, ImageReadLimits.MaxMetadataRead));
            data = await context.ReadAsync(0, (int)Math.Max(parsed.BytesNeeded, more), cancellationToken).ConfigureAwait(false);
            reachesEnd = data.Length >= context.Source.Length || data.Length <= before;
        }
    }

    /// <summary>
    /// Parses the head the walk already read, as the first step of <see cref="ReadUntilParsedAsync"/> does:
    /// <see langword="true"/> when that parse is final (no more bytes would be read), so a reader can finish the
    /// layer without a state machine.
    /// </summary>
    public static bool TryParseHead<THeader>(LayerReadContext context, HeaderParser<THeader> parse, long contiguousLimit, out ParsedHeader<THeader> parsed) =>
        TryParse(context, parse, contiguousLimit, context.Head, context.HeadIsWholeImage, out parsed);

    /// <summary>One parse of <paramref name="data"/>; <see langword="true"/> when it is the one to keep rather than a request for more bytes.</summary>
    private static bool TryParse<THeader>(
        LayerReadContext context, HeaderParser<THeader> parse, long contiguousLimit, ReadOnlyMemory<byte> data, bool reachesEnd, out ParsedHeader<THeader> parsed)
    {
        HeaderError error = parse(data.Span, context.Source.Length, reachesEnd, out THeader header, out long bytesNeeded);
        parsed = new ParsedHeader<THeader>(error, header, data, reachesEnd, bytesNeeded);
        return error != HeaderError.Truncated || reachesEnd || bytesNeeded <= data.Length || bytesNeeded > contiguousLimit;
    }
}
