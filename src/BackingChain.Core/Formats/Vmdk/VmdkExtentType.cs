namespace BackingChain.Formats.Vmdk;

/// <summary>The extent types qemu 7.2 opens from a descriptor's extent lines (other types are skipped, as qemu skips them).</summary>
internal enum VmdkExtentType
{
    /// <summary>FLAT: raw data at an offset (in sectors) of the named file.</summary>
    Flat,

    /// <summary>SPARSE: a hosted sparse extent file starting with "KDMV" (or "COWD").</summary>
    Sparse,

    /// <summary>VMFS: raw data from the start of the named file (no offset on the line).</summary>
    Vmfs,

    /// <summary>VMFSSPARSE: an ESX sparse extent file ("COWD", or "KDMV").</summary>
    VmfsSparse,

    /// <summary>SESPARSE: an ESXi seSparse extent file (read-only in qemu).</summary>
    SeSparse,
}
