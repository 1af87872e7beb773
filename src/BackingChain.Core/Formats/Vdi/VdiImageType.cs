namespace BackingChain.Formats.Vdi;

/// <summary>The VDI image type (qemu does not check it).</summary>
internal enum VdiImageType : uint
{
    /// <summary>No type.</summary>
    None = 0,

    /// <summary>Dynamically allocated.</summary>
    Dynamic = 1,

    /// <summary>Preallocated ("static").</summary>
    Static = 2,

    /// <summary>Undo disk.</summary>
    Undo = 3,

    /// <summary>Differencing disk (its parent is named by UUID only).</summary>
    Differencing = 4,
}
