namespace BackingChain.Chain;

/// <summary>What the referenced file is to the image that names it.</summary>
public enum ReferenceRole
{
    /// <summary>The backing file (qcow2, qcow, QED).</summary>
    BackingFile,

    /// <summary>A qcow2 external data file, which holds the guest data.</summary>
    ExternalDataFile,

    /// <summary>An extent of a VMDK descriptor.</summary>
    VmdkExtent,

    /// <summary>The parent of a VMDK delta disk (<c>parentFileNameHint</c>).</summary>
    VmdkParent,

    /// <summary>A parent locator of a differencing VHD.</summary>
    VhdParentLocator,

    /// <summary>A parent locator entry of a differencing VHDX.</summary>
    VhdxParentLocator,
}
