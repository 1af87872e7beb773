namespace BackingChain;

/// <summary>Where a layer's format came from — the heart of the trust rule.</summary>
public enum FormatSource
{
    /// <summary>The caller declared it (like <c>qemu-img -f</c>).</summary>
    Declared,

    /// <summary>The image above recorded it next to the reference (a qcow2 backing format, for example).</summary>
    Recorded,

    /// <summary>It was guessed from the content, which a guest may have written.</summary>
    Probed,
}
