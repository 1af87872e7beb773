using System;
using System.Collections.Generic;
using BackingChain.Chain;

namespace BackingChain.Formats;

/// <summary>What a format reader found: header facts and the names the image stores, not yet resolved.</summary>
/// <remarks>
/// A value, not an object: the walk copies what the chain keeps into its layer, so the facts themselves are never a
/// heap object of their own. Always made with <see langword="new"/> (the lists come from the initializers).
/// </remarks>
internal readonly struct LayerFacts
{
    public LayerFacts()
    {
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

    public List<StoredReference> References { get; } = TakeSpare(ref t_spareReferences);

    /// <summary>
    /// Structure that qemu accepts but that qemu or the hypervisor could trip on, or that would let guest writes
    /// change the header after it was judged (a table overlapping the header, one past the end of the file). The
    /// untrusted-image posture refuses a layer with any; each names the check.
    /// </summary>
    public List<string> StructureProblems { get; } = TakeSpare(ref t_spareProblems);

    // The two lists are scratch space: the walk copies what it keeps out of them and hands them back (Recycle), so
    // a walk of any depth creates them once per thread rather than once per layer.
    private const int SpareCapacity = 16;

    [ThreadStatic]
    private static List<StoredReference>? t_spareReferences;

    [ThreadStatic]
    private static List<string>? t_spareProblems;

    public static LayerFacts Failed(HeaderError error, string message) => new() { Error = error, ErrorMessage = message };

    /// <summary>
    /// Hands the lists back for the next facts made on this thread. Only for facts nothing refers to any more (the
    /// layer built from them copied what it keeps); the facts must not be used afterwards.
    /// </summary>
    public readonly void Recycle()
    {
        Keep(References, ref t_spareReferences);
        Keep(StructureProblems, ref t_spareProblems);
    }

    private static void Keep<T>(List<T> list, ref List<T>? spare)
    {
        // A list grown by a hostile image (thousands of extents) is left to the collector rather than kept.
        if (spare is null && list.Capacity <= SpareCapacity)
        {
            list.Clear();
            spare = list;
        }
    }

    private static List<T> TakeSpare<T>(ref List<T>? spare)
    {
        List<T>? list = spare;
        spare = null;
        return list ?? [];
    }
}

/// <summary>A name as an image stores it.</summary>
internal readonly record struct StoredReference(string Name, ReferenceRole Role, string? RecordedFormat);
