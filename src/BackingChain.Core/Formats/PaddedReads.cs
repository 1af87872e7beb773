using System;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Formats;

/// <summary>
/// Reads as qemu's block layer does them: bytes past the end of the file read as zeros. Format readers that
/// mirror qemu's open checks use this so that a truncated image fails (or passes) the same check it does in qemu.
/// </summary>
internal static class PaddedReads
{
    /// <summary>The file length as qemu's protocol layer reports it: rounded up to whole 512-byte sectors.</summary>
    public static long RoundedLength(long length) => length > long.MaxValue - 511 ? length : (length + 511) & ~511L;

    /// <summary>
    /// Reads exactly <paramref name="length"/> bytes at <paramref name="offset"/>, zero-filled past the end of
    /// the image. Returns <see langword="null"/> when the request itself is impossible (offset beyond 2^63), as
    /// qemu's read fails.
    /// </summary>
    public static async ValueTask<byte[]?> ReadAsync(LayerReadContext context, ulong offset, int length, CancellationToken cancellationToken)
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
}
