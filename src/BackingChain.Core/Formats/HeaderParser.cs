using System;

namespace BackingChain.Formats;

/// <summary>
/// A format's header parser as <see cref="HeaderReads.ReadUntilParsedAsync"/> drives it: given the bytes read so far
/// (with the file length, for parsers whose checks need it) and whether they reach the end of the file, it returns <see cref="HeaderError.Truncated"/> with
/// <paramref name="bytesNeeded"/> when it needs more from the start of the image.
/// </summary>
internal delegate HeaderError HeaderParser<THeader>(ReadOnlySpan<byte> data, long fileLength, bool dataReachesEndOfFile, out THeader header, out long bytesNeeded);
