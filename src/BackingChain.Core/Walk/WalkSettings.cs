using System;
using System.Collections.Immutable;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Trust;
using Microsoft.Extensions.Logging;


namespace BackingChain.Walk;

/// <summary>
/// The settings every walk takes, whichever entry point starts it (the resolver, the upload gate, the store scanner,
/// the domain reader): the policy, where references are opened from, the depth cap, the deadline and the formats the service recorded. Each entry
/// point's options read and write them through this one value, so a setting added here reaches every entry point,
/// and none can be forgotten by a copy written field by field at one site.
/// </summary>
internal readonly record struct WalkSettings(TrustPolicy Policy, ImmutableArray<IImageSourceProvider> SourceProviders, int MaxDepth, TimeSpan Timeout, IImageFormatCatalog? FormatCatalog)
{
    /// <summary>The settings of a resolver that walks with exactly these.</summary>
    public ImageChainResolverOptions ToResolverOptions() => new() { Walk = this };

    /// <summary>
    /// A resolver walking with these settings that logs to <paramref name="logger"/>: the entry point's own logger, so
    /// that the walk an upload, a scan or a domain starts is logged where that entry point logs.
    /// </summary>
    public ImageChainResolver CreateResolver(ILogger? logger) =>
        new(ToResolverOptions(), logger is null ? null : logger as ILogger<ImageChainResolver> ?? new CategoryLogger<ImageChainResolver>(logger));
}
