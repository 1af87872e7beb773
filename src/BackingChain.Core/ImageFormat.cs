namespace BackingChain;

/// <summary>
/// The disk-image formats the library knows, named as qemu names its block drivers.
/// </summary>
/// <remarks>
/// The qemu driver name of each value (the <c>format</c> field of <c>qemu-img info</c>) is given by
/// <see cref="ImageFormatNames.GetQemuName(ImageFormat)"/>.
/// </remarks>
public enum ImageFormat
{
    /// <summary>No format could be established.</summary>
    Unknown = 0,

    /// <summary>Raw data with no header; qemu's fallback when probing finds nothing else.</summary>
    Raw,

    /// <summary>QEMU copy-on-write version 2 or 3 (<c>qcow2</c>).</summary>
    Qcow2,

    /// <summary>QEMU copy-on-write version 1 (<c>qcow</c>).</summary>
    Qcow,

    /// <summary>QEMU enhanced disk (<c>qed</c>).</summary>
    Qed,

    /// <summary>VMware virtual disk (<c>vmdk</c>).</summary>
    Vmdk,

    /// <summary>Microsoft Virtual PC / Hyper-V VHD, qemu's <c>vpc</c> driver.</summary>
    Vpc,

    /// <summary>Hyper-V VHDX (<c>vhdx</c>).</summary>
    Vhdx,

    /// <summary>VirtualBox disk image (<c>vdi</c>).</summary>
    Vdi,

    /// <summary>LUKS encrypted volume (<c>luks</c>).</summary>
    Luks,

    /// <summary>Parallels disk image (<c>parallels</c>).</summary>
    Parallels,

    /// <summary>Bochs growing disk image (<c>bochs</c>).</summary>
    Bochs,

    /// <summary>Compressed loopback image (<c>cloop</c>).</summary>
    Cloop,

    /// <summary>Apple disk image with a UDIF trailer (<c>dmg</c>).</summary>
    Dmg,
}
