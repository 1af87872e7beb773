namespace BackingChain.Formats.Vmdk;

/// <summary>One extent as qemu reports it under <c>format-specific.data.extents</c> (<c>VmdkExtentInfo</c>).</summary>
public sealed class VmdkExtentInfo
{
    internal VmdkExtentInfo()
    {
    }

    /// <summary>The extent file's name as qemu opened it (the image itself for monolithic files).</summary>
    public string FileName { get; internal init; } = "";

    /// <summary>The extent type from the descriptor ("FLAT", "SPARSE"...), or "" for a directly opened sparse file.</summary>
    public string Format { get; internal init; } = "";

    /// <summary>The extent's size in bytes.</summary>
    public long VirtualSize { get; internal init; }

    /// <summary>The grain size in bytes, for sparse extents; <see langword="null"/> for flat ones.</summary>
    public long? ClusterSize { get; internal init; }

    /// <summary>Whether grains are compressed (stream-optimized).</summary>
    public bool Compressed { get; internal init; }
}
