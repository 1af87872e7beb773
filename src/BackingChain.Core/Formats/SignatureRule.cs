using System;

namespace BackingChain.Formats;

/// <summary>
/// One signature a format reader declares for thorough detection: where it is looked for, whether qemu 7.2's
/// probe sees it, what it is called, and how it is recognised. Each reader owns its rules, so the detector
/// names no format.
/// </summary>
internal sealed class SignatureRule
{
    private SignatureRule(SignatureLocation location, bool seenByQemu, string description, Matcher? match)
    {
        Location = location;
        SeenByQemu = seenByQemu;
        Description = description;
        Match = match;
    }

    /// <summary>Recognises the signature in what thorough detection read.</summary>
    public delegate bool Matcher(in SignatureInput input);

    /// <summary>Gets where the signature lives.</summary>
    public SignatureLocation Location { get; }

    /// <summary>Gets whether qemu 7.2's probe (first 512 bytes and the name) sees it.</summary>
    public bool SeenByQemu { get; }

    /// <summary>Gets what was found, for people.</summary>
    public string Description { get; }

    /// <summary>Gets the recogniser; <see langword="null"/> means the reader's own qemu probe on the first 512 bytes.</summary>
    public Matcher? Match { get; }

    /// <summary>The reader's qemu probe scoring above zero on the first 512 bytes, without the file name: the magic qemu sees.</summary>
    public static SignatureRule QemuProbe(string qemuName) =>
        new(SignatureLocation.Head, true, $"{qemuName} signature at the start", null);

    /// <summary>A signature qemu's probe does not see (it sits past the first 512 bytes, at the end, or qemu lacks the check).</summary>
    public static SignatureRule Unseen(SignatureLocation location, string description, Matcher match)
    {
        ArgumentNullException.ThrowIfNull(match);
        return new SignatureRule(location, false, description, match);
    }

    /// <summary>A signature qemu's probe sees through something other than the head's magic (the file name).</summary>
    public static SignatureRule Seen(SignatureLocation location, string description, Matcher match)
    {
        ArgumentNullException.ThrowIfNull(match);
        return new SignatureRule(location, true, description, match);
    }
}
