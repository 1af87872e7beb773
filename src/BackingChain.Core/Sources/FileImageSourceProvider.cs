using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Trust;

namespace BackingChain.Sources;

/// <summary>Opens local POSIX paths (relative names are relative to the process's working directory, as in qemu).</summary>
internal sealed class FileImageSourceProvider : IImageSourceProvider, IKnownSourceProvider
{
    /// <summary>The shared instance.</summary>
    public static FileImageSourceProvider Instance { get; } = new();

    /// <inheritdoc/>
    public bool CanOpen(ImageReference reference)
    {
        System.ArgumentNullException.ThrowIfNull(reference);
        return reference.IsLocalPath;
    }

    /// <inheritdoc/>
    public ValueTask<IImageSource> OpenAsync(string name, CancellationToken cancellationToken = default) =>
        new(FileImageSource.Open(name));

    /// <inheritdoc/>
    public bool OpensLocalFiles => true;

    /// <inheritdoc/>
    public ValueTask<AdmittedSource> OpenAdmittedAsync(string name, TrustPolicy policy, FormatSource referrer, ImageReference reference, CancellationToken cancellationToken) =>
        new(new AdmittedSource(FileImageSource.Open(name), null, null));
}
