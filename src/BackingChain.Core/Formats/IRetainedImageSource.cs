using System;

namespace BackingChain.Formats;

/// <summary>
/// A source whose readable bytes are already held in memory (the streaming inspector's retained windows). The
/// read context takes a view from it instead of allocating a buffer and copying, so a header that asks for a
/// large range the source does not hold costs nothing. Like <see cref="LayerReadContext.Head"/>, a view is pooled
/// memory valid only while the reader runs: readers copy (decode to strings) whatever they keep.
/// </summary>
internal interface IRetainedImageSource
{
    /// <summary>The bytes of a range already clipped to the image length.</summary>
    /// <exception cref="ImageFormatException">The source does not hold all of them (never a short read, which readers would take for the end of the file).</exception>
    ReadOnlyMemory<byte> GetRetained(long offset, int count);
}
