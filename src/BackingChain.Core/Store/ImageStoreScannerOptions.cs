using System;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Store;

/// <summary>Settings of <see cref="ImageStoreScanner"/>. The defaults are the safe ones. Immutable once built (<c>init</c> only), so one instance may be shared by any number of threads.</summary>
public sealed class ImageStoreScannerOptions
{
    private int _maxDepth = ImageChainResolverOptions.DefaultMaxDepth;
    private int _maxParallelism = Environment.ProcessorCount;

    /// <summary>The shared default options.</summary>
    internal static ImageStoreScannerOptions Default { get; } = new();

    /// <summary>The trust policy every image of the store is judged under. Default: <see cref="TrustPolicy.Default"/>.</summary>
    public TrustPolicy Policy { get; init; } = TrustPolicy.Default;

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
