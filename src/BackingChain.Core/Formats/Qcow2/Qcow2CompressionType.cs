namespace BackingChain.Formats.Qcow2;

/// <summary>The qcow2 <c>compression_type</c> field (header offset 104).</summary>
public enum Qcow2CompressionType : byte
{
    /// <summary>zlib/deflate, the default and the only type of v2 images.</summary>
    Zlib = 0,

    /// <summary>Zstandard; requires incompatible feature bit 3.</summary>
    Zstd = 1,
}
