using System.Collections.Concurrent;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Sources;

namespace BackingChain.Tests.Infrastructure;

/// <summary>The file provider, recording every name the resolver asked it to open.</summary>
internal sealed class SpyFileProvider : IImageSourceProvider
{
    public ConcurrentQueue<string> Opened { get; } = new();

    public bool CanOpen(ImageReference reference) => FileImageSourceProvider.Instance.CanOpen(reference);

    public ValueTask<IImageSource> OpenAsync(string name, CancellationToken cancellationToken = default)
    {
        Opened.Enqueue(name);
        return FileImageSourceProvider.Instance.OpenAsync(name, cancellationToken);
    }
}
