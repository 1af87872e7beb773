using System.Collections.Immutable;
using BackingChain.Trust;

namespace BackingChain.Interop;

/// <summary>
/// What libvirt will do with one <c>&lt;disk&gt;</c>: the layers the XML spells out (used as given, never probed),
/// whether the chain ends there or libvirt continues it by reading the last given layer's header, the verdict on
/// the whole chain qemu will open, and where the XML and the images disagree.
/// </summary>
public sealed class LibvirtDiskChain
{
    internal LibvirtDiskChain(
        string? target,
        string? device,
        ImmutableArray<LibvirtDiskLayer> layers,
        bool isTerminated,
        TrustReport report,
        string? unsafeReason,
        ImmutableArray<LibvirtDrift> drift,
        LibvirtPrediction prediction)
    {
        Prediction = prediction;
        Target = target;
        Device = device;
        Layers = layers;
        IsTerminated = isTerminated;
        Report = report;
        UnsafeReason = unsafeReason;
        Drift = drift;
    }

    /// <summary>Gets the guest device (<c>&lt;target dev&gt;</c>), or <see langword="null"/> when the XML gives none.</summary>
    public string? Target { get; }

    /// <summary>Gets the disk's <c>device</c> attribute (<c>disk</c>, <c>cdrom</c>...), or <see langword="null"/>.</summary>
    public string? Device { get; }

    /// <summary>Gets the explicit layers, top first: the disk's source, then each nested <c>&lt;backingStore&gt;</c>.</summary>
    public ImmutableArray<LibvirtDiskLayer> Layers { get; }

    /// <summary>
    /// Gets whether the XML ends the chain with an empty <c>&lt;backingStore/&gt;</c>: the chain is complete as written
    /// and nothing is probed. When <see langword="false"/>, libvirt reads the last given layer's header and walks on from it.
    /// </summary>
    public bool IsTerminated { get; }

    /// <summary>Gets the index in <see cref="Layers"/> of the layer libvirt continues the chain from, or <see langword="null"/> when <see cref="IsTerminated"/>.</summary>
    public int? ProbeStart => IsTerminated ? null : Layers.Length - 1;

    /// <summary>
    /// Gets the verdict on the whole chain qemu will open, walked and judged under the caller's policy like any other
    /// chain: the spelled-out layers read with their declared formats (every layer below the disk's source, and every
    /// other file a layer names, put to the trust gate), then, unless <see cref="IsTerminated"/>, what the last one's
    /// header leads to. Its <see cref="TrustReport.Chain"/> has the spelled-out layers first, as far as they could be read.
    /// </summary>
    public TrustReport Report { get; }

    /// <summary>
    /// Gets what libvirt (the version <see cref="LibvirtPrediction.LibvirtVersion"/> models) will do with the disk: start
    /// it with the images' chain, start it with another chain, or refuse it, and why.
    /// </summary>
    public LibvirtPrediction Prediction { get; }

    /// <summary>
    /// Gets whether the chain qemu will open may be used: <see cref="Report"/>'s verdict, and libvirt starts the disk
    /// with the images' chain (a refusal or another chain is never safe). Drift is reported beside it, in <see cref="Drift"/>.
    /// </summary>
    internal bool IsSafe => Report.IsSafe && Prediction.Outcome is LibvirtOutcome.Starts or LibvirtOutcome.NotPredicted;

    /// <summary>Gets why the chain is not safe, in one line (the first rejected layer and its reason, or what stopped the walk), or <see langword="null"/> when it is.</summary>
    public string? UnsafeReason { get; }

    /// <summary>Gets every disagreement between the XML and the images it names; empty when they agree.</summary>
    public ImmutableArray<LibvirtDrift> Drift { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Target ?? "(no target)"}: {Layers.Length} explicit layer(s), {(IsTerminated ? "terminated" : "probed")}, {(IsSafe ? "safe" : "unsafe")}, {Drift.Length} drift(s)";
}
