namespace BackingChain.Formats;

/// <summary>Bounds on what is read from an untrusted image.</summary>
internal static class ImageReadLimits
{
    /// <summary>Bytes read from the start of every image: the probe needs 512, most headers fit in 4 KiB.</summary>
    public const int HeadLength = 4096;

    /// <summary>The largest single metadata read (a qcow2 bitmap directory or snapshot table is bounded by 64 MiB in qemu).</summary>
    public const int MaxMetadataRead = 64 * 1024 * 1024;
}
