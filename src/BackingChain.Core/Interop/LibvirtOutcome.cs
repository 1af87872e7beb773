namespace BackingChain.Interop;

/// <summary>What libvirt (the version <see cref="LibvirtPrediction.LibvirtVersion"/> models) will do when a domain with a disk is started.</summary>
public enum LibvirtOutcome
{
    /// <summary>libvirt starts the disk with the chain the images describe, as qemu reads them.</summary>
    Starts,

    /// <summary>libvirt starts the disk, but with a chain other than the images' (a layer it does not see, or reads as another format, or a file it does not pass to qemu): see <see cref="LibvirtPrediction.Findings"/>.</summary>
    StartsWithOtherChain,

    /// <summary>The domain does not start: libvirt refuses the disk, or qemu fails to open what libvirt gives it (<see cref="LibvirtPrediction.Reason"/>, in libvirt's words).</summary>
    Refused,

    /// <summary>Not predicted: the chain leads to something this library did not read (a name the trust policy refused, storage it cannot open); <see cref="LibvirtPrediction.Reason"/> says what.</summary>
    NotPredicted,
}
