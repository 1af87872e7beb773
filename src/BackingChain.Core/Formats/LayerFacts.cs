using System.Collections.Generic;

namespace BackingChain.Formats;

/// <summary>What a format reader found: header facts and the names the image stores, not yet resolved.</summary>
/// <remarks>
/// A value, not an object: the walk copies what the chain keeps into its layer, so the facts themselves are never a
/// heap object of their own. A reader makes them with <c>new LayerFacts(context)</c>, whose two lists are the walk's
/// scratch lists, handed back with <see cref="Recycle"/>; <c>new LayerFacts()</c> makes lists of its own.
/// </remarks>
internal readonly struct LayerFacts
{
    public LayerFacts()
    {
        References = [];
        StructureProblems = [];
    }

    /// <summary>Facts whose lists are the context's scratch lists (see <see cref="LayerReadContext.TakeScratch"/>).</summary>
    public LayerFacts(LayerReadContext context)
    {
        (References, StructureProblems) = context.TakeScratch();
    }

    public HeaderError Error { get; init; }

    public string? ErrorMessage { get; init; }

    public long VirtualSize { get; init; }

    public int? ClusterSize { get; init; }

    public bool? DirtyFlag { get; init; }

    public bool Encrypted { get; init; }

    public FormatSpecificInfo? FormatSpecific { get; init; }

    /// <summary>
    /// Bytes allocated by other files the reader opened that qemu counts in the image's <c>actual-size</c>
    /// (VMDK extents: qemu adds every extent file to the descriptor's own size).
    /// </summary>
    public long AdditionalAllocatedSize { get; init; }

    public List<StoredReference> References { get; }

    /// <summary>
    /// Structure that qemu accepts but that qemu or the hypervisor could trip on, or that would let guest writes
    /// change the header after it was judged (a table overlapping the header, one past the end of the file). The
    /// untrusted-image posture refuses a layer with any; each names the check.
    /// </summary>
    public List<string> StructureProblems { get; }

    public static LayerFacts Failed(HeaderError error, string message) => new() { Error = error, ErrorMessage = message };

    /// <summary>
    /// Hands the lists back to <paramref name="context"/> for the next layer's facts. Only for facts nothing refers
    /// to any more (the layer built from them copied what it keeps); the facts must not be used afterwards.
    /// </summary>
    public readonly void Recycle(LayerReadContext context) => context.KeepScratch(References, StructureProblems);
}

/// <summary>A name as an image stores it.</summary>
internal readonly record struct StoredReference(string Name, ReferenceRole Role, string? RecordedFormat);
