namespace BackingChain.Editing;

/// <summary>One positional write of a header edit; the editor flushes to disk after each one.</summary>
/// <param name="Offset">Where in the file the bytes go.</param>
/// <param name="Data">The bytes.</param>
internal readonly record struct HeaderWrite(long Offset, byte[] Data);
