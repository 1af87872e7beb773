using BackingChain.Chain;

namespace BackingChain.Trust;

/// <summary>
/// A caller's own rule for trusting a location. It is asked before anything is opened, so it sees names,
/// never content.
/// </summary>
/// <remarks>
/// One policy serves every walk that uses it, and walks run concurrently (a shared resolver, the upload gate, a store
/// scan with several walks at once): <see cref="IsTrusted"/> may be called from several threads at the same time and
/// must be safe for that. It should answer quickly and without I/O of its own; an exception it throws is not caught.
/// </remarks>
public interface IImageTrust
{
    /// <summary>Whether the image a reference names may be trusted.</summary>
    /// <param name="reference">The reference as stored and classified.</param>
    /// <param name="canonicalPath">The canonical absolute path for local names (symlinks resolved), or <see langword="null"/> when it cannot be formed (missing file, protocol name).</param>
    /// <returns><see langword="true"/> to trust it.</returns>
    bool IsTrusted(ImageReference reference, string? canonicalPath);
}
