using System.Collections.Immutable;
using System.Net.Http;
using BackingChain.Sources;
using BackingChain.Store;
using BackingChain.Streaming;
using BackingChain.Trust;
using Microsoft.Extensions.Options;
using BackingChain.Walk;

namespace BackingChain.Hosting;

/// <summary>
/// What <see cref="BackingChainServiceCollectionExtensions.AddBackingChain"/> builds once per container from the
/// validated <see cref="BackingChainOptions"/>: one policy and one walk's settings, from which every entry point's
/// options are derived, so the resolver, the gate, the scanner and the domain reader can never walk or judge by
/// different rules.
/// </summary>
internal sealed class BackingChainSettings
{
    public BackingChainSettings(IOptions<BackingChainOptions> options, IHttpClientFactory clients)
    {
        // Reading Value runs the configurations and the validation (already run at start with ValidateOnStart).
        BackingChainOptions settings = options.Value;
        ImmutableArray<IImageSourceProvider> sources = settings.ReadsUrls
            ? [ImageSources.Files, ImageSources.Http(() => clients.CreateClient(BackingChainOptions.HttpClientName))]
            : [ImageSources.Files];

        Policy = settings.BuildPolicy();
        Resolver = settings.BuildResolverOptions(Policy, sources);
        Upload = settings.BuildUploadInspectionOptions(Resolver);
        Scanner = BackingChainOptions.BuildScannerOptions(Resolver);
    }

    public TrustPolicy Policy { get; }

    public ImageChainResolverOptions Resolver { get; }

    public UploadInspectionOptions Upload { get; }

    public ImageStoreScannerOptions Scanner { get; }
}
