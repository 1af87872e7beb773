namespace BackingChain.Formats.Vpc;

/// <summary>The footer's disk type field.</summary>
internal enum VhdDiskType : uint
{
    /// <summary>No type.</summary>
    None = 0,

    /// <summary>Deprecated value 1.</summary>
    Reserved1 = 1,

    /// <summary>A fixed disk: the data, then the footer.</summary>
    Fixed = 2,

    /// <summary>A dynamic (sparse) disk.</summary>
    Dynamic = 3,

    /// <summary>A differencing disk: a dynamic disk with a parent.</summary>
    Differencing = 4,

    /// <summary>Deprecated value 5.</summary>
    Reserved5 = 5,

    /// <summary>Deprecated value 6.</summary>
    Reserved6 = 6,
}
