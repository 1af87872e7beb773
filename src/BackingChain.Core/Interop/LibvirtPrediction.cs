using System.Collections.Immutable;
using BackingChain.Chain;

namespace BackingChain.Interop;

/// <summary>
/// What libvirt will do with one disk when the domain starts, modelled on libvirt <see cref="LibvirtVersion"/> with its
/// qemu driver: whether it starts the disk, with which chain (as <c>virsh dumpxml</c> of the running domain shows it),
/// or why it refuses it, in libvirt's words; and, as findings, each place where that chain is not the images'.
/// </summary>
public sealed class LibvirtPrediction
{
    /// <summary>The libvirt version whose behaviour is modelled (Debian 12's libvirt 9.0.0, with QEMU 7.2).</summary>
    public const string LibvirtVersion = "9.0";

    internal LibvirtPrediction(LibvirtOutcome outcome, string? reason, ImmutableArray<LibvirtPredictedLayer> layers, bool isTerminated, ImmutableArray<ChainFinding> findings)
    {
        Outcome = outcome;
        Reason = reason;
        Layers = layers;
        IsTerminated = isTerminated;
        Findings = findings;
    }

    /// <summary>Gets what libvirt will do.</summary>
    public LibvirtOutcome Outcome { get; }

    /// <summary>Gets libvirt's error when it refuses the disk (without the <c>(as uid:N, gid:N)</c> it adds), or why nothing is predicted; otherwise <see langword="null"/>.</summary>
    public string? Reason { get; }

    /// <summary>Gets the chain libvirt builds, top first, as far as it gets (up to the layer it refuses at, when it refuses).</summary>
    public ImmutableArray<LibvirtPredictedLayer> Layers { get; }

    /// <summary>Gets whether libvirt ends the chain itself (its live XML closes it with <c>&lt;backingStore/&gt;</c>, and qemu is told there is nothing below); <see langword="false"/> where it leaves the rest to qemu (network storage).</summary>
    public bool IsTerminated { get; }

    /// <summary>Gets the disagreements between libvirt's chain and the images', each with a code of <see cref="LibvirtFindingCodes"/>; empty when libvirt starts the disk with the images' chain.</summary>
    public ImmutableArray<ChainFinding> Findings { get; }

    /// <inheritdoc/>
    public override string ToString() => $"libvirt {LibvirtVersion}: {Outcome}{(Reason is null ? "" : ": " + Reason)}, {Layers.Length} layer(s)";
}
