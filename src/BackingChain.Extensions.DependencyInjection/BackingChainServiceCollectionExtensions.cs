using System;
using System.Net.Http;
using BackingChain.Interop;
using BackingChain.Store;
using BackingChain.Streaming;
using BackingChain.Trust;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using BackingChain.Walk;

namespace BackingChain.Hosting;

/// <summary>Registers the library with a dependency-injection container, the Options pattern's way.</summary>
public static class BackingChainServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="BackingChainOptions"/> as options bound to the <c>BackingChain</c> configuration section and
    /// validated when the host starts, and, as singletons under one policy built from them: the resolver
    /// (<see cref="ImageChainResolver"/>), the upload gate (<see cref="ImageUploadGate"/>), the store scanner
    /// (<see cref="ImageStoreScanner"/>), the libvirt domain reader (<see cref="LibvirtDomainReader"/>), their settings
    /// (<see cref="ImageChainResolverOptions"/>, <see cref="UploadInspectionOptions"/>,
    /// <see cref="ImageStoreScannerOptions"/>), the <see cref="TrustPolicy"/>, and <see cref="BackingChainHealthCheck"/>.
    /// </summary>
    /// <param name="services">The container's services.</param>
    /// <param name="configure">Changes the options after the configuration section is bound; several calls apply in order.</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    /// <remarks>
    /// <para>The configuration section is bound first, whatever the order of the calls, when the container has an
    /// <see cref="IConfiguration"/>; then every <c>services.Configure&lt;BackingChainOptions&gt;(…)</c> and every
    /// <paramref name="configure"/>, in the order they were registered.</para>
    /// <para>Invalid settings (a relative or missing trusted root, a malformed pin or URL prefix, a value out of range)
    /// stop the host at start with an <see cref="OptionsValidationException"/> whose failures each name the setting
    /// (<c>BackingChain:TrustedRoots:0: …</c>); without a host, the first resolution of any of these services throws it.</para>
    /// <para>When a URL prefix is trusted (or a pin names a URL), http(s) references are read through the
    /// <c>IHttpClientFactory</c> client named <see cref="BackingChainOptions.HttpClientName"/>; otherwise only local
    /// files are opened. Loggers come from the container's <see cref="ILoggerFactory"/> when there is one. A service
    /// already registered is left as it is.</para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is <see langword="null"/>.</exception>
    public static IServiceCollection AddBackingChain(this IServiceCollection services, Action<BackingChainOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);

        if (!services.Contains(Marker))
        {
            services.Add(Marker);

            // First of all the option's configurations, so that the application's own Configure calls, made before
            // or after this one, change what the section says rather than being overwritten by it.
            services.Insert(0, ServiceDescriptor.Singleton<IConfigureOptions<BackingChainOptions>>(
                provider => new ConfigureFromSection(provider.GetService<IConfiguration>())));
            services.AddOptions<BackingChainOptions>().ValidateOnStart();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BackingChainOptions>, BackingChainOptionsValidator>());

            // Redirects are the library's to judge, and a cookie one server sets must not reach another a chain names.
            services.AddHttpClient(BackingChainOptions.HttpClientName)
                .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
                {
                    AllowAutoRedirect = false,
                    UseCookies = false,
                    ConnectTimeout = TimeSpan.FromSeconds(10),
                })
                .ConfigureHttpClient(client => client.Timeout = TimeSpan.FromSeconds(30));

            services.TryAddSingleton<BackingChainSettings>();
            services.TryAddSingleton(provider => provider.GetRequiredService<BackingChainSettings>().Policy);
            services.TryAddSingleton(provider => provider.GetRequiredService<BackingChainSettings>().Resolver);
            services.TryAddSingleton(provider => provider.GetRequiredService<BackingChainSettings>().Upload);
            services.TryAddSingleton(provider => provider.GetRequiredService<BackingChainSettings>().Scanner);
            services.TryAddSingleton(provider => new ImageChainResolver(
                provider.GetRequiredService<ImageChainResolverOptions>(), provider.GetService<ILogger<ImageChainResolver>>()));
            services.TryAddSingleton(provider => new ImageUploadGate(
                provider.GetRequiredService<UploadInspectionOptions>(), provider.GetService<ILogger<ImageUploadGate>>()));
            services.TryAddSingleton(provider => new ImageStoreScanner(
                provider.GetRequiredService<ImageStoreScannerOptions>(), provider.GetService<ILogger<ImageStoreScanner>>()));
            services.TryAddSingleton(provider => new LibvirtDomainReader(
                provider.GetRequiredService<ImageChainResolverOptions>(), provider.GetService<ILogger<LibvirtDomainReader>>()));
            services.TryAddSingleton(provider => new BackingChainHealthCheck(provider.GetRequiredService<ImageChainResolverOptions>()));
        }

        if (configure is not null)
        {
            services.Configure(configure);
        }

        return services;
    }

    /// <summary>Marks a collection the registrations were made in, so that a second call adds only its configuration.</summary>
    private static readonly ServiceDescriptor Marker = ServiceDescriptor.Singleton<BackingChainMarker, BackingChainMarker>();

    private sealed class BackingChainMarker;

    /// <summary>Binds the <c>BackingChain</c> section when the container has a configuration (a bare container has none).</summary>
    private sealed class ConfigureFromSection(IConfiguration? configuration) : IConfigureOptions<BackingChainOptions>
    {
        public void Configure(BackingChainOptions options)
        {
            configuration?.GetSection(BackingChainOptions.SectionName).Bind(options);
        }
    }
}
