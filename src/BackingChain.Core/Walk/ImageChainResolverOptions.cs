using System;
using System.Collections.Immutable;
using BackingChain.Sources;
using BackingChain.Trust;

namespace BackingChain.Walk;

/// <summary>Settings of <see cref="ImageChainResolver"/>. The defaults are the safe ones. Immutable once built (<c>init</c> only), so one instance may be shared by any number of threads.</summary>
public sealed class ImageChainResolverOptions
{
    /// <summary>libvirt's default depth limit.</summary>
    internal const int DefaultMaxDepth = 200;

    /// <summary>The default deadline of one walk: two minutes.</summary>
    internal static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    private int _maxDepth = DefaultMaxDepth;
    private TimeSpan _timeout = DefaultTimeout;

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

    /// <summary>
    /// The deadline of one walk, from its start to its verdict, every layer and every source read or opened
    /// included (an <see cref="System.Net.Http.HttpClient.Timeout"/> bounds only one request). A walk that outlives it
    /// ends with an <c>unreachable-image</c> finding that names the deadline, keeping the layers it read; it does not
    /// throw. Default two minutes; <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> sets no deadline.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is neither positive nor infinite.</exception>
    public TimeSpan Timeout
    {
        get => _timeout;
        init
        {
            if (value != System.Threading.Timeout.InfiniteTimeSpan && (value <= TimeSpan.Zero || value.TotalMilliseconds > int.MaxValue))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "The walk's timeout must be positive (at most about 24 days) or infinite.");
            }

            _timeout = value;
        }
    }

    /// <summary>Where referenced images come from, asked in order. Default: local files only.</summary>
    public ImmutableArray<IImageSourceProvider> SourceProviders { get; init; } = [FileImageSourceProvider.Instance];
}
