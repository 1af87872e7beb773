using System;
using System.Buffers.Binary;
using System.Globalization;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Sources;

/// <summary>
/// An image read from an NBD server (the Network Block Device protocol, as <c>qemu-nbd</c> and qemu's nbd driver speak
/// it): the fixed-newstyle handshake, the export chosen with <c>NBD_OPT_GO</c>, and simple replies to
/// <c>NBD_CMD_READ</c>. The export's bytes are the image's bytes, as when qemu-nbd exports a file with <c>-f raw</c>.
/// </summary>
/// <remarks>
/// Everything the server sends is bounded before it is believed: an option reply longer than
/// <see cref="MaxOptionReply"/> bytes, more than <see cref="MaxOptionReplies"/> replies, a reply to a request not
/// made, or a reply magic that is not NBD's ends the connection with an <see cref="IOException"/>. One request is in
/// flight at a time (reads are serialised); a read cancelled part-way leaves the stream at an unknown place, so the
/// connection is then given up and later reads fail.
/// </remarks>
internal sealed class NbdImageSource : IImageSource, IKnownImageSource
{
    /// <summary>The most one option reply may carry; the replies asked for here hold a few bytes, a name at most 4 KiB.</summary>
    internal const int MaxOptionReply = 64 * 1024;

    /// <summary>The most replies one option may get before the server is taken to be misbehaving.</summary>
    internal const int MaxOptionReplies = 64;

    /// <summary>The most one read request asks for: the protocol's default maximum payload is 32 MiB; headers need far less.</summary>
    internal const int MaxRequest = 1024 * 1024;

    private const ulong InitMagic = 0x4e42444d41474943; // "NBDMAGIC"
    private const ulong OptionMagic = 0x49484156454f5054; // "IHAVEOPT"
    private const ulong OptionReplyMagic = 0x0003e889045565a9;
    private const uint RequestMagic = 0x25609513;
    private const uint SimpleReplyMagic = 0x67446698;
    private const ushort FlagFixedNewstyle = 1;
    private const ushort FlagNoZeroes = 2;
    private const uint OptionGo = 7;
    private const uint ReplyAck = 1;
    private const uint ReplyInfo = 3;
    private const ushort InfoExport = 0;
    private const ushort CommandRead = 0;
    private const ushort CommandDisconnect = 2;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly byte[] _header = new byte[28];
    private ulong _cookie;
    private bool _broken;
    private bool _disposed;

    private NbdImageSource(string name, NbdAddress address, Socket socket, long length)
    {
        Name = name;
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        Length = length;
        Identity = ImageSourceIdentity.ForKey("nbd", address.Key);
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public long Length { get; }

    /// <inheritdoc/>
    /// <remarks>NBD does not say how much storage an export occupies (qemu omits <c>actual-size</c> too).</remarks>
    public long? AllocatedSize => null;

    /// <inheritdoc/>
    public ImageSourceIdentity Identity { get; }

    bool IKnownImageSource.ReadsSynchronously => false;

    long? IKnownImageSource.ChangeStamp => null;

    bool IKnownImageSource.IsDevice => false;

    /// <summary>qemu's nbd driver has no <c>bdrv_get_info</c>: over NBD qemu-img prints no <c>dirty-flag</c> for raw or luks.</summary>
    bool IKnownImageSource.ProtocolAnswersGetInfo => false;

    int IKnownImageSource.ReadAt(long offset, Span<byte> buffer) => throw new NotSupportedException();

    /// <summary>Connects to the export <paramref name="name"/> names and learns its size.</summary>
    /// <exception cref="IOException">The name is not an NBD name, the server cannot be reached, refuses the export, or breaks the protocol (the message says which).</exception>
    public static async Task<NbdImageSource> OpenAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!NbdAddress.TryParse(name, out NbdAddress address, out string? error))
        {
            throw new IOException(error);
        }

        byte[] export = Encoding.UTF8.GetBytes(address.Export);
        if (export.Length > NbdAddress.MaxExportLength)
        {
            throw new IOException("the NBD export name is longer than the protocol carries");
        }

        Socket socket = address.Socket is null
            ? new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }
            : new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            try
            {
                if (address.Socket is null)
                {
                    await socket.ConnectAsync(address.Host!, address.Port, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(address.Socket), cancellationToken).ConfigureAwait(false);
                }
            }
            catch (SocketException ex)
            {
                throw new IOException($"cannot connect to the NBD server: {Internal.ErrorWords.Describe(ex)}", ex);
            }

            long length = await HandshakeAsync(socket, export, address.Export, cancellationToken).ConfigureAwait(false);
            return new NbdImageSource(name, address, socket, length);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The fixed-newstyle handshake and <c>NBD_OPT_GO</c>; returns the export's size.</summary>
    private static async Task<long> HandshakeAsync(Socket socket, byte[] export, string exportName, CancellationToken cancellationToken)
    {
        using var stream = new NetworkStream(socket, ownsSocket: false);
        byte[] greeting = new byte[18];
        await ReadExactlyAsync(stream, greeting, cancellationToken).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt64BigEndian(greeting) != InitMagic || BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)) != OptionMagic)
        {
            throw new IOException("the server does not speak NBD's newstyle handshake (an oldstyle server, or not NBD at all)");
        }

        ushort serverFlags = BinaryPrimitives.ReadUInt16BigEndian(greeting.AsSpan(16));
        if ((serverFlags & FlagFixedNewstyle) == 0)
        {
            throw new IOException("the NBD server does not offer the fixed newstyle handshake");
        }

        // The client's flags, then NBD_OPT_GO: the export's name and no information requests (the export's size and
        // flags always come back in an NBD_INFO_EXPORT reply).
        byte[] request = new byte[4 + 16 + 4 + export.Length + 2];
        BinaryPrimitives.WriteUInt32BigEndian(request, (uint)(FlagFixedNewstyle | (serverFlags & FlagNoZeroes)));
        BinaryPrimitives.WriteUInt64BigEndian(request.AsSpan(4), OptionMagic);
        BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(12), OptionGo);
        BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(16), (uint)(4 + export.Length + 2));
        BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(20), (uint)export.Length);
        export.CopyTo(request.AsSpan(24));
        await stream.WriteAsync(request, cancellationToken).ConfigureAwait(false);

        long length = -1;
        byte[] replyHeader = new byte[20];
        for (int replies = 0; replies < MaxOptionReplies; replies++)
        {
            await ReadExactlyAsync(stream, replyHeader, cancellationToken).ConfigureAwait(false);
            uint option = BinaryPrimitives.ReadUInt32BigEndian(replyHeader.AsSpan(8));
            uint type = BinaryPrimitives.ReadUInt32BigEndian(replyHeader.AsSpan(12));
            uint size = BinaryPrimitives.ReadUInt32BigEndian(replyHeader.AsSpan(16));
            if (BinaryPrimitives.ReadUInt64BigEndian(replyHeader) != OptionReplyMagic || option != OptionGo)
            {
                throw new IOException("the NBD server's reply to the export request is not an option reply");
            }

            if (size > MaxOptionReply)
            {
                throw new IOException(string.Create(CultureInfo.InvariantCulture, $"the NBD server's option reply claims {size} bytes; at most {MaxOptionReply} are accepted"));
            }

            byte[] data = new byte[size];
            await ReadExactlyAsync(stream, data, cancellationToken).ConfigureAwait(false);
            if ((type & 0x8000_0000) != 0)
            {
                throw new IOException($"the NBD server refused the export '{OneLine(exportName)}': {DescribeOptionError(type, data)}");
            }

            if (type == ReplyInfo && size >= 2 && BinaryPrimitives.ReadUInt16BigEndian(data) == InfoExport)
            {
                if (size != 12)
                {
                    throw new IOException("the NBD server's export information has the wrong size");
                }

                ulong exportSize = BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(2));
                if (exportSize > long.MaxValue)
                {
                    throw new IOException("the NBD server reports an export larger than 2^63 bytes");
                }

                length = (long)exportSize;
            }
            else if (type == ReplyAck)
            {
                return length >= 0 ? length : throw new IOException("the NBD server accepted the export without saying its size");
            }

            // Any other information (names, block sizes the server volunteers) is read and set aside.
        }

        throw new IOException(string.Create(CultureInfo.InvariantCulture, $"the NBD server sent more than {MaxOptionReplies} replies to one request"));
    }

    /// <inheritdoc/>
    public async ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset >= Length || buffer.IsEmpty)
        {
            return 0;
        }

        int wanted = (int)Math.Min(buffer.Length, Length - offset);
        await _oneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_broken)
            {
                throw new IOException("an earlier read from the NBD server was interrupted; the connection is given up");
            }

            int done = 0;
            while (done < wanted)
            {
                int count = Math.Min(wanted - done, MaxRequest);
                await ReadBlockAsync(offset + done, buffer.Slice(done, count), cancellationToken).ConfigureAwait(false);
                done += count;
            }

            return done;
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    private async ValueTask ReadBlockAsync(long offset, Memory<byte> into, CancellationToken cancellationToken)
    {
        ulong cookie = ++_cookie;
        WriteRequest(_header, CommandRead, cookie, offset, into.Length);
        _broken = true;
        try
        {
            await _stream.WriteAsync(_header, cancellationToken).ConfigureAwait(false);
            await ReadExactlyAsync(_stream, _header.AsMemory(0, 16), cancellationToken).ConfigureAwait(false);
            if (BinaryPrimitives.ReadUInt32BigEndian(_header) != SimpleReplyMagic)
            {
                throw new IOException("the NBD server's answer to a read is not a simple reply");
            }

            if (BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(8)) != cookie)
            {
                throw new IOException("the NBD server answered a read that was not asked");
            }

            uint error = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(4));
            if (error != 0)
            {
                // An error reply carries no data: the stream is still in step, so the connection stays usable.
                _broken = false;
                throw new IOException(string.Create(CultureInfo.InvariantCulture, $"the NBD server could not read {into.Length} bytes at {offset}: {DescribeErrno(error)}"));
            }

            await ReadExactlyAsync(_stream, into, cancellationToken).ConfigureAwait(false);
            _broken = false;
        }
        catch (SocketException ex)
        {
            throw new IOException($"the connection to the NBD server failed: {Internal.ErrorWords.Describe(ex)}", ex);
        }
    }

    private static void WriteRequest(Span<byte> header, ushort command, ulong cookie, long offset, int length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(header, RequestMagic);
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(header[6..], command);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], cookie);
        BinaryPrimitives.WriteUInt64BigEndian(header[16..], (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(header[24..], (uint)length);
    }

    private static async ValueTask ReadExactlyAsync(Stream stream, Memory<byte> into, CancellationToken cancellationToken)
    {
        try
        {
            await stream.ReadExactlyAsync(into, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException ex)
        {
            throw new IOException("the NBD server closed the connection", ex);
        }
        catch (IOException ex) when (ex.InnerException is SocketException socket)
        {
            throw new IOException($"the connection to the NBD server failed: {Internal.ErrorWords.Describe(socket)}", ex);
        }
    }

    private static string DescribeOptionError(uint type, byte[] message)
    {
        string kind = (type & 0x7fff_ffff) switch
        {
            1 => "the request is not supported",
            2 => "forbidden by the server's policy",
            3 => "the request is invalid",
            4 => "not supported on the server's platform",
            5 => "the server requires TLS",
            6 => "no such export",
            7 => "the server is shutting down",
            8 => "the server requires block size negotiation",
            9 => "the request is too big",
            _ => string.Create(CultureInfo.InvariantCulture, $"error {type & 0x7fff_ffff}"),
        };

        // The server may add words of its own; they are shown, on one line, after ours.
        string said = OneLine(Encoding.UTF8.GetString(message.AsSpan(0, Math.Min(message.Length, 200))));
        return said.Length == 0 ? kind : $"{kind} ({said})";
    }

    private static string DescribeErrno(uint error) => error switch
    {
        1 => "operation not permitted",
        5 => "input/output error",
        12 => "out of memory",
        22 => "invalid argument",
        28 => "no space left",
        75 => "value too large",
        95 => "operation not supported",
        108 => "the server is shutting down",
        _ => string.Create(CultureInfo.InvariantCulture, $"error {error}"),
    };

    private static string OneLine(string text)
    {
        var line = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            line.Append(char.IsControl(c) ? ' ' : c);
        }

        return line.ToString().Trim();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        // A polite server is told the client is leaving (NBD_CMD_DISC has no reply); a broken connection is just closed.
        if (!_broken && _oneAtATime.Wait(0))
        {
            try
            {
                Span<byte> request = stackalloc byte[28];
                WriteRequest(request, CommandDisconnect, ++_cookie, 0, 0);
                _socket.Send(request, SocketFlags.None);
            }
            catch (SocketException)
            {
                // The server is gone already; nothing to tell it.
            }
            catch (ObjectDisposedException)
            {
                // Disposed twice.
            }
        }

        _broken = true;
        _disposed = true;
        _stream.Dispose();
        _socket.Dispose();
    }
}
