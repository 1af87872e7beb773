using System;
using System.Collections.Generic;
using BackingChain.Streaming;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Hosting;

/// <summary>
/// What <see cref="BackingChainServiceCollectionExtensions.AddBackingChain"/> builds once per container: every
/// registered configuration applied in order, then one policy shared by the gate and the resolver, so the two can
/// never judge by different rules.
/// </summary>
internal sealed class BackingChainSettings
{
    public BackingChainSettings(IEnumerable<BackingChainConfiguration> configurations)
    {
        var options = new BackingChainOptions();
        foreach (BackingChainConfiguration configuration in configurations)
        {
            configuration.Configure?.Invoke(options);
        }

        TrustPolicy policy = options.BuildPolicy();
        Upload = options.BuildUploadInspectionOptions(policy);
        Resolver = options.BuildResolverOptions(policy);
    }

    public UploadInspectionOptions Upload { get; }

    public ImageChainResolverOptions Resolver { get; }
}

/// <summary>One <c>AddBackingChain</c> call's configuration, kept as a service so that several calls add up.</summary>
internal sealed class BackingChainConfiguration(Action<BackingChainOptions>? configure)
{
    public Action<BackingChainOptions>? Configure { get; } = configure;
}
