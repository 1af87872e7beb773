using System;
using System.Collections.Immutable;
using BackingChain.Sources;
using BackingChain.Trust;

namespace BackingChain.Chain;

/// <summary>Settings of <see cref="ImageChainResolver"/>. The defaults are the safe ones. Immutable once built (<c>init</c> only), so one instance may be shared by any number of threads.</summary>
public sealed class ImageChainResolverOptions
{
    /// <summary>libvirt's default depth limit.</summary>
    internal const int DefaultMaxDepth = 200;

    private int _maxDepth = DefaultMaxDepth;

    /// <summary>The shared default options.</summary>
    public static ImageChainResolverOptions Default { get; } = new();

    /// <summary>The trust policy, asked before any reference is opened. Default: <see cref="TrustPolicy.Default"/>.</summary>
    public TrustPolicy Policy { get; init; } = TrustPolicy.Default;

    /// <summary>The most layers a chain may have, the top included. Default 200.</summary>
    public int MaxDepth
    {
        get => _maxDepth;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _maxDepth = value;
        }
    }

    /// <summary>Where referenced images come from, asked in order. Default: local files only.</summary>
    public ImmutableArray<IImageSourceProvider> SourceProviders { get; init; } = [FileImageSourceProvider.Instance];
}
