using System;
using BackingChain.Streaming;
using BackingChain.Walk;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace BackingChain.Hosting;

/// <summary>Registers the library with a dependency-injection container.</summary>
public static class BackingChainServiceCollectionExtensions
{
    /// <summary>
    /// Registers, as singletons, the upload gate (<see cref="ImageUploadGate"/>), a resolver for stored chains
    /// (<see cref="ImageChainResolver"/>) and their settings (<see cref="UploadInspectionOptions"/>,
    /// <see cref="ImageChainResolverOptions"/>), all under one policy built from <see cref="BackingChainOptions"/>.
    /// </summary>
    /// <param name="services">The container's services.</param>
    /// <param name="configure">Sets the options, e.g. <c>o =&gt; configuration.GetSection("BackingChain").Bind(o)</c>; several calls apply in order.</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    /// <remarks>
    /// The configurations run, and the settings are validated, when one of these services is first resolved; invalid
    /// settings (a relative or missing trusted root, a window out of range) then throw an
    /// <see cref="ArgumentException"/> naming the setting. Loggers come from the container's
    /// <see cref="ILoggerFactory"/> when there is one. A service already registered is left as it is.
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is <see langword="null"/>.</exception>
    public static IServiceCollection AddBackingChain(this IServiceCollection services, Action<BackingChainOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);

        // Every call's configuration is kept (not only the first), so libraries and the application can each add roots.
        services.AddSingleton(new BackingChainConfiguration(configure));
        services.TryAddSingleton(provider => new BackingChainSettings(provider.GetServices<BackingChainConfiguration>()));
        services.TryAddSingleton(provider => provider.GetRequiredService<BackingChainSettings>().Upload);
        services.TryAddSingleton(provider => provider.GetRequiredService<BackingChainSettings>().Resolver);
        services.TryAddSingleton(provider => new ImageUploadGate(
            provider.GetRequiredService<UploadInspectionOptions>(), provider.GetService<ILogger<ImageUploadGate>>()));
        services.TryAddSingleton(provider => new ImageChainResolver(
            provider.GetRequiredService<ImageChainResolverOptions>(), provider.GetService<ILogger<ImageChainResolver>>()));
        return services;
    }
}
