using System;

namespace BackingChain.Formats;

/// <summary>What <see cref="HeaderReads.ReadUntilParsedAsync"/> ended with: the parser's verdict and the bytes it saw.</summary>
internal readonly struct ParsedHeader<THeader>
{
    public ParsedHeader(HeaderError error, THeader header, ReadOnlyMemory<byte> data, bool reachesEndOfFile, long bytesNeeded)
    {
        Error = error;
        Header = header;
        Data = data;
        ReachesEndOfFile = reachesEndOfFile;
        BytesNeeded = bytesNeeded;
    }

    /// <summary>Gets the parser's last verdict.</summary>
    public HeaderError Error { get; }

    /// <summary>Gets the header (its fixed fields even when <see cref="Error"/> is <see cref="HeaderError.Truncated"/>).</summary>
    public THeader Header { get; }

    /// <summary>Gets the bytes from the start of the image the parser last saw.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>Gets whether <see cref="Data"/> was taken to reach the end of the file.</summary>
    public bool ReachesEndOfFile { get; }

    /// <summary>Gets how many bytes from the start the parser last asked for.</summary>
    public long BytesNeeded { get; }

    /// <summary>Gets whether the parser wants more than the helper reads in one piece (a far-away name).</summary>
    public bool NeedsFarRead => Error == HeaderError.Truncated && !ReachesEndOfFile && BytesNeeded > Data.Length;
}
