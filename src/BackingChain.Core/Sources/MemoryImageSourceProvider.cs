using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;

namespace BackingChain.Sources;

/// <summary>Serves a fixed set of in-memory images by name: chains for tests, benchmarks and embedding.</summary>
internal sealed class MemoryImageSourceProvider : IImageSourceProvider
{
    private readonly ImmutableDictionary<string, ReadOnlyMemory<byte>> _images;

    /// <summary>Creates the provider.</summary>
    /// <param name="images">Image bytes keyed by the exact name a reference resolves to.</param>
    public MemoryImageSourceProvider(IEnumerable<KeyValuePair<string, ReadOnlyMemory<byte>>> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        _images = images.ToImmutableDictionary(StringComparer.Ordinal);
    }

    /// <inheritdoc/>
    public bool CanOpen(ImageReference reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return reference.IsLocalPath;
    }

    /// <inheritdoc/>
    public ValueTask<IImageSource> OpenAsync(string name, CancellationToken cancellationToken = default)
    {
        if (!_images.TryGetValue(name, out ReadOnlyMemory<byte> data))
        {
            return ValueTask.FromException<IImageSource>(new FileNotFoundException($"Could not open '{name}': No such file or directory", name));
        }

        return new ValueTask<IImageSource>(new MemoryImageSource(name, data));
    }
}
