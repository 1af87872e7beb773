namespace BackingChain.Interop;

/// <summary>
/// The stable codes of the findings that tell where libvirt (the version <see cref="LibvirtPrediction.LibvirtVersion"/>
/// models) and the images disagree. They never change meaning between versions.
/// </summary>
public static class LibvirtFindingCodes
{
    /// <summary>The domain does not start: libvirt refuses the disk, or qemu fails to open what libvirt gives it.</summary>
    public const string Refuses = "libvirt-refuses";

    /// <summary>An image names a backing file libvirt does not read (past the first 0x8200 bytes it reads, or in a header it gives up on): qemu is told the image has none.</summary>
    public const string BackingNotRead = "libvirt-backing-not-read";

    /// <summary>libvirt gives qemu a layer as another format than the image's (a recorded format it does not know, a VMDK parent it probes): the guest sees other bytes.</summary>
    public const string FormatDiffers = "libvirt-format-differs";

    /// <summary>A qcow2 layer keeps its data in an external file libvirt does not know: it is neither listed nor given to qemu's user, and qemu opens the name itself.</summary>
    public const string DataFileNotCarried = "libvirt-data-file-not-carried";
}
