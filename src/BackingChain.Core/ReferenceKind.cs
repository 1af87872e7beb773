namespace BackingChain;

/// <summary>What kind of name an image stores for another file, classified with qemu's rules.</summary>
public enum ReferenceKind
{
    /// <summary>A POSIX path relative to the directory of the image that records it.</summary>
    RelativePath,

    /// <summary>A POSIX path starting with <c>/</c>.</summary>
    AbsolutePath,

    /// <summary>A Windows path (drive letter, UNC or backslashes): never treated as a local POSIX path.</summary>
    WindowsPath,

    /// <summary>A protocol URI or prefix: a <c>:</c> occurs before any <c>/</c> (<c>nbd:</c>, <c>http:</c>, <c>file:</c>...).</summary>
    Protocol,

    /// <summary>qemu's <c>json:{...}</c> pseudo-protocol: block options rather than a name.</summary>
    Json,
}
