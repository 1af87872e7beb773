namespace BackingChain;

/// <summary>What the referenced file is to the image that names it.</summary>
/// <remarks>
/// Every format's parent is a <see cref="BackingFile"/>: the qcow2, qcow and QED backing file, the VMDK
/// <c>parentFileNameHint</c> and the VHD and VHDX parent locators all name the image underneath, which is what
/// qemu calls the backing file. The layer's format tells them apart where it matters.
/// </remarks>
public enum ReferenceRole
{
    /// <summary>The image underneath: a backing file, a VMDK parent or a VHD/VHDX parent locator.</summary>
    BackingFile,

    /// <summary>A qcow2 external data file, which holds the guest data.</summary>
    ExternalDataFile,

    /// <summary>An extent file of a VMDK descriptor, which holds part of the guest data.</summary>
    Extent,
}
