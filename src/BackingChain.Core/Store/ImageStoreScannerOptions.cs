using System;
using System.Collections.Immutable;
using BackingChain.Sources;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Store;

/// <summary>Settings of <see cref="ImageStoreScanner"/>. The defaults are the safe ones. Immutable once built (<c>init</c> only), so one instance may be shared by any number of threads.</summary>
public sealed class ImageStoreScannerOptions
{
    private int _maxDepth = ImageChainResolverOptions.DefaultMaxDepth;
    private int _maxParallelism = Environment.ProcessorCount;

    /// <summary>Creates the default settings: those of <see cref="ImageChainResolverOptions.Default"/> for every walk, one walk per processor.</summary>
    public ImageStoreScannerOptions()
    {
    }

    /// <summary>
    /// Creates settings whose walks are <paramref name="walk"/>'s: its policy, source providers, depth cap and deadline
    /// (each image's walk), so that a scanned image is judged as a check of that file alone with the same settings.
    /// </summary>
    /// <param name="walk">The walk's settings, for example the resolver's of the same service.</param>
    /// <exception cref="ArgumentNullException"><paramref name="walk"/> is <see langword="null"/>.</exception>
    public ImageStoreScannerOptions(ImageChainResolverOptions walk)
    {
        ArgumentNullException.ThrowIfNull(walk);
        Walk = walk.Walk;
    }

    /// <summary>The shared default options.</summary>
    internal static ImageStoreScannerOptions Default { get; } = new();

    /// <summary>The trust policy every image of the store is judged under. Default: <see cref="TrustPolicy.Default"/>.</summary>
    public TrustPolicy Policy { get; init; } = TrustPolicy.Default;

    /// <summary>Where the images a store's images name are opened from, asked in order (<see cref="ImageChainResolverOptions.SourceProviders"/>). Default: local files only.</summary>
    public ImmutableArray<IImageSourceProvider> SourceProviders { get; init; } = ImageChainResolverOptions.Default.SourceProviders;

    /// <summary>
    /// The deadline of each image's walk (<see cref="ImageChainResolverOptions.Timeout"/>): an image whose walk
    /// outlives it gets an <c>unreachable-image</c> finding, and the scan goes on. Default two minutes.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is neither positive nor infinite.</exception>
    public TimeSpan Timeout
    {
        get;

        // The resolver's options hold the rule; asking them keeps one definition of what is in range.
        init => field = new ImageChainResolverOptions { Timeout = value }.Timeout;
    } = ImageChainResolverOptions.Default.Timeout;

    /// <summary>The most layers a chain may have, the top included. Default 200, as for a single chain.</summary>
    public int MaxDepth
    {
        get => _maxDepth;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _maxDepth = value;
        }
    }

    /// <summary>
    /// The formats the service recorded for the store's images, or <see langword="null"/> (the default) to probe every
    /// file. A file whose format it records is read as that format and never probed (a file recorded as raw names
    /// nothing, whatever header its content holds); see <see cref="IImageFormatCatalog"/>.
    /// </summary>
    public IImageFormatCatalog? FormatCatalog { get; init; }

    /// <summary>Every setting each image's walk takes, read or written at once (<see cref="WalkSettings"/>).</summary>
    internal WalkSettings Walk
    {
        get => new(Policy, SourceProviders, MaxDepth, Timeout, FormatCatalog);
        init
        {
            Policy = value.Policy;
            SourceProviders = value.SourceProviders;
            MaxDepth = value.MaxDepth;
            Timeout = value.Timeout;
            FormatCatalog = value.FormatCatalog;
        }
    }

    /// <summary>How many images are walked at once. Default: the number of processors.</summary>
    public int MaxParallelism
    {
        get => _maxParallelism;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _maxParallelism = value;
        }
    }
}
