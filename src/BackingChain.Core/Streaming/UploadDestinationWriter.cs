using System;
using System.Buffers;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Internal;

namespace BackingChain.Streaming;

/// <summary>
/// Stores an upload in the gate's destination. On a seekable file it keeps the upload's holes, as
/// <c>cp --sparse=always</c> and <c>qemu-img convert -S</c> do: the bytes are gathered into a staging buffer, every
/// all-zero block (<see cref="BlockLength"/>, aligned to the file offset) is skipped by seeking past it rather than
/// written, consecutive non-zero blocks go out as one write, and the file's length is set to the upload's at the end so
/// a trailing hole is kept. Any other destination (a pipe, a device, a stream that is not a file) gets every byte, in
/// the order and segments it arrives in.
/// </summary>
/// <remarks>
/// The file is first cut at the position the upload starts from: a skipped block must read back as zeros, which it
/// does only where the file had no content (a hole), never where an earlier, longer content would still show through.
/// </remarks>
internal sealed class UploadDestinationWriter : IDisposable
{
    /// <summary>The hole granularity: 4 KiB, the block of the usual Linux file systems and the default of <c>qemu-img convert -S</c>.</summary>
    internal const int BlockLength = 4096;

    /// <summary>The staging buffer: 1 MiB, so a run of data goes to the file in writes of up to 1 MiB whatever the pipe's segments.</summary>
    internal const int StagingLength = 1024 * 1024;

    private readonly Stream _destination;
    private byte[]? _staging;
    private long _start;
    private long _stagingOffset; // file offset of _staging[0], a multiple of BlockLength
    private int _stagingFrom;    // first byte of _staging that belongs to the upload (non-zero only before an unaligned start)
    private int _stagingCount;   // bytes of _staging filled, from 0
    private long _length;

    private UploadDestinationWriter(Stream destination, bool sparse)
    {
        _destination = destination;
        if (sparse)
        {
            _start = destination.Position;
            if (destination.Length > _start)
            {
                destination.SetLength(_start);
            }

            _staging = ArrayPool<byte>.Shared.Rent(StagingLength);
            _stagingFrom = (int)(_start % BlockLength);
            _stagingOffset = _start - _stagingFrom;
            _stagingCount = _stagingFrom;
        }
    }

    /// <summary>Gets whether zero blocks are stored as holes.</summary>
    public bool IsSparse => _staging is not null;

    /// <summary>Starts storing an upload at the destination's position.</summary>
    /// <param name="destination">The destination; flushed and disposed by the caller.</param>
    /// <param name="sparse">Whether zero blocks may become holes (<see cref="UploadInspectionOptions.SparseDestination"/>); only a seekable, writable <see cref="FileStream"/> gets them.</param>
    public static UploadDestinationWriter Create(Stream destination, bool sparse) =>
        new(destination, sparse && destination is FileStream { CanSeek: true, CanWrite: true } file && IsRegularFile(file));

    /// <summary>
    /// Only a regular file has holes that read as zeros and a length to set. A block device (an upload written
    /// straight onto a volume) or a character device also seeks, but a skipped block there keeps whatever the device
    /// held, and its length cannot be set; those, and every file where the type cannot be read (not Linux), get every byte.
    /// </summary>
    private static bool IsRegularFile(FileStream file) =>
        UnixFileStatus.TryGet(file.SafeFileHandle, out UnixFileStatus status) && status.IsRegularFile;

    /// <summary>Stores the next bytes of the upload. The memory is not kept past the call.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        _length += bytes.Length;
        if (_staging is null)
        {
            await _destination.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
            return;
        }

        while (!bytes.IsEmpty)
        {
            int take = Math.Min(bytes.Length, StagingLength - _stagingCount);
            bytes.Span[..take].CopyTo(_staging.AsSpan(_stagingCount));
            _stagingCount += take;
            bytes = bytes[take..];
            if (_stagingCount == StagingLength)
            {
                await FlushStagingAsync(cancellationToken).ConfigureAwait(false);
                _stagingOffset += StagingLength;
                _stagingFrom = 0;
                _stagingCount = 0;
            }
        }
    }

    /// <summary>Stores what is still staged and ends the file at the upload's length (a trailing hole included).</summary>
    public async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        if (_staging is null)
        {
            return;
        }

        await FlushStagingAsync(cancellationToken).ConfigureAwait(false);
        long end = _start + _length;
        _destination.SetLength(end);
        _destination.Position = end;
    }

    /// <summary>Writes the staged non-zero blocks, each run of consecutive ones in one write, and seeks past the zero ones.</summary>
    private async ValueTask FlushStagingAsync(CancellationToken cancellationToken)
    {
        byte[] staging = _staging!;
        int runStart = -1;
        for (int block = _stagingFrom - (_stagingFrom % BlockLength); block < _stagingCount; block += BlockLength)
        {
            int from = Math.Max(block, _stagingFrom);
            int to = Math.Min(block + BlockLength, _stagingCount);
            bool zero = !staging.AsSpan(from, to - from).ContainsAnyExcept((byte)0);
            if (!zero && runStart < 0)
            {
                runStart = from;
            }
            else if (zero && runStart >= 0)
            {
                await WriteRunAsync(runStart, from, cancellationToken).ConfigureAwait(false);
                runStart = -1;
            }
        }

        if (runStart >= 0)
        {
            await WriteRunAsync(runStart, _stagingCount, cancellationToken).ConfigureAwait(false);
        }
    }

    private ValueTask WriteRunAsync(int from, int to, CancellationToken cancellationToken)
    {
        _destination.Position = _stagingOffset + from;
        return _destination.WriteAsync(_staging.AsMemory(from, to - from), cancellationToken);
    }

    public void Dispose()
    {
        if (_staging is byte[] staging)
        {
            _staging = null;
            ArrayPool<byte>.Shared.Return(staging);
        }
    }
}
