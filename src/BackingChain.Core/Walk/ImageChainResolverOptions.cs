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

    /// <summary>Creates the default settings: <see cref="TrustPolicy.Default"/>, local files, 200 layers, two minutes.</summary>
    public ImageChainResolverOptions()
    {
    }

    /// <summary>
    /// Creates a copy of <paramref name="other"/>, every setting included, to change some with an object initializer
    /// (<c>new ImageChainResolverOptions(walk) { Timeout = left }</c>).
    /// </summary>
    /// <param name="other">The settings to copy.</param>
    /// <exception cref="ArgumentNullException"><paramref name="other"/> is <see langword="null"/>.</exception>
    public ImageChainResolverOptions(ImageChainResolverOptions other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Walk = other.Walk;
    }

    /// <summary>The shared default options.</summary>
    public static ImageChainResolverOptions Default { get; } = new();

    /// <summary>The trust policy, asked before any reference is opened. Default: <see cref="TrustPolicy.Default"/> (the library's one default, stated there).</summary>
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

    /// <summary>
    /// The formats a service recorded for its stored images, or <see langword="null"/> (the default) for none. A top
    /// image given by path without a format is read as the format recorded for it, never probed; an image the walk
    /// reaches through a backing name is read as qemu reads it (the name's recorded format, else probed), with a
    /// <c>format-mismatch</c> finding where that is not the format recorded for it.
    /// </summary>
    public IImageFormatCatalog? FormatCatalog { get; init; }

    /// <summary>Every setting a walk takes, read or written at once: the one place they are copied (<see cref="WalkSettings"/>).</summary>
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
}
