using System;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;

namespace BackingChain.Sources;

/// <summary>
/// Opens NBD names (<c>nbd://</c>, <c>nbd+unix://</c>, <c>nbd:HOST:PORT</c>) with <see cref="NbdImageSource"/>. The
/// resolver asks the trust policy before it asks a provider, so an NBD name is connected to only once it is admitted.
/// </summary>
internal sealed class NbdImageSourceProvider : IImageSourceProvider
{
    public static readonly NbdImageSourceProvider Instance = new();

    private NbdImageSourceProvider()
    {
    }

    /// <inheritdoc/>
    public bool CanOpen(ImageReference reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return !reference.IsLocalPath && reference.FullName is { } name && NbdAddress.IsNbdName(name);
    }

    /// <inheritdoc/>
    public async ValueTask<IImageSource> OpenAsync(string name, CancellationToken cancellationToken = default) =>
        await NbdImageSource.OpenAsync(name, cancellationToken).ConfigureAwait(false);
}
