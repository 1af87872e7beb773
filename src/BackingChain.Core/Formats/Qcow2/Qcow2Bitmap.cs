namespace BackingChain.Formats.Qcow2;

/// <summary>A persistent dirty bitmap's directory entry, as qemu reports it.</summary>
public sealed class Qcow2Bitmap
{
    internal Qcow2Bitmap(string name, long granularity, bool inUse, bool auto)
    {
        Name = name;
        Granularity = granularity;
        InUse = inUse;
        Auto = auto;
    }

    /// <summary>The bitmap's name.</summary>
    public string Name { get; }

    /// <summary>Bytes covered by one bit.</summary>
    public long Granularity { get; }

    /// <summary>Flag bit 0: the bitmap was not saved cleanly.</summary>
    public bool InUse { get; }

    /// <summary>Flag bit 1: the bitmap tracks writes automatically.</summary>
    public bool Auto { get; }
}
