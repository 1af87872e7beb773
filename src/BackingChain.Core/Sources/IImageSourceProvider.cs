using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;

namespace BackingChain.Sources;

/// <summary>
/// Opens the images that references name. The resolver asks providers in order; local files are served by
/// <see cref="ImageSources.Files"/>, and protocol references (<c>http:</c>, <c>nbd:</c>...) are followed
/// only when a provider for them is configured.
/// </summary>
public interface IImageSourceProvider
{
    /// <summary>Whether this provider serves the reference's kind of name.</summary>
    /// <param name="reference">The reference, already allowed by the trust policy.</param>
    /// <returns><see langword="true"/> when <see cref="OpenAsync"/> should be called.</returns>
    bool CanOpen(ImageReference reference);

    /// <summary>Opens the named image.</summary>
    /// <param name="name">The name to open (the reference's <see cref="ImageReference.FullName"/>, or the top image's name).</param>
    /// <param name="cancellationToken">Cancels the open.</param>
    /// <returns>The source; the caller disposes it.</returns>
    /// <exception cref="System.IO.IOException">The image cannot be opened (missing, not a file...).</exception>
    ValueTask<IImageSource> OpenAsync(string name, CancellationToken cancellationToken = default);
}
