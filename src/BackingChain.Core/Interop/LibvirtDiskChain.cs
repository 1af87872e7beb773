using System.Collections.Immutable;
using BackingChain.Trust;

namespace BackingChain.Interop;

/// <summary>
/// What libvirt will do with one <c>&lt;disk&gt;</c>: the layers the XML spells out (used as given, never probed),
/// whether the chain ends there or libvirt continues it by reading the last given layer's header, the verdict on
/// that continued part, and where the XML and the images disagree.
/// </summary>
public sealed class LibvirtDiskChain
{
    internal LibvirtDiskChain(
        string? target,
        string? device,
        ImmutableArray<LibvirtDiskLayer> layers,
        bool isTerminated,
        TrustReport? probedChain,
        bool isSafe,
        string? unsafeReason,
        ImmutableArray<LibvirtDrift> drift)
    {
        Target = target;
        Device = device;
        Layers = layers;
        IsTerminated = isTerminated;
        ProbedChain = probedChain;
        IsSafe = isSafe;
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
    /// Gets the verdict on the part libvirt walks by itself: the chain from the layer at <see cref="ProbeStart"/> down,
    /// with that layer's format declared as the XML declares it. <see langword="null"/> when nothing is walked (the chain
    /// is terminated) or it cannot be walked here (the layer is not a local file).
    /// </summary>
    public TrustReport? ProbedChain { get; }

    /// <summary>Gets whether the chain libvirt will use passes the trust rule: explicit layers are the administrator's, and the walked part must be judged safe.</summary>
    public bool IsSafe { get; }

    /// <summary>Gets why the chain is not safe, in one line, or <see langword="null"/> when it is.</summary>
    public string? UnsafeReason { get; }

    /// <summary>Gets every disagreement between the XML and the images it names; empty when they agree.</summary>
    public ImmutableArray<LibvirtDrift> Drift { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{Target ?? "(no target)"}: {Layers.Length} explicit layer(s), {(IsTerminated ? "terminated" : "probed")}, {(IsSafe ? "safe" : "unsafe")}, {Drift.Length} drift(s)";
}
