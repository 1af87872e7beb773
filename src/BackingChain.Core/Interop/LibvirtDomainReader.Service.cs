using System;
using System.Collections.Immutable;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using BackingChain.Walk;

namespace BackingChain.Interop;

/// <summary>The reader as a service: settings given once, as the resolver, the gate and the scanner take theirs.</summary>
public sealed partial class LibvirtDomainReader
{
    private readonly ImageChainResolverOptions _options;
    private readonly ILogger? _logger;

    /// <summary>Creates a reader that walks every disk's chain with <paramref name="options"/> and logs the walks to <paramref name="logger"/>.</summary>
    /// <param name="options">The walk's settings (<see cref="ReadAsync(Stream, ImageChainResolverOptions?, CancellationToken)"/>); <see cref="ImageChainResolverOptions.Default"/> when <see langword="null"/>.</param>
    /// <param name="logger">Where the walks log; nothing is logged when <see langword="null"/>.</param>
    public LibvirtDomainReader(ImageChainResolverOptions? options = null, ILogger<LibvirtDomainReader>? logger = null)
    {
        _options = options ?? ImageChainResolverOptions.Default;
        _logger = logger;
    }

    /// <summary>Gets the settings every disk's chain is walked and judged with.</summary>
    public ImageChainResolverOptions Options => _options;

    /// <summary>Reads every disk of a domain (or the one disk) and examines its chain with this reader's settings.</summary>
    /// <param name="xml">The document: a <c>&lt;domain&gt;</c> or a <c>&lt;disk&gt;</c>. It is read to its end (at most the size bound) and not closed.</param>
    /// <param name="cancellationToken">Cancels reading and walking.</param>
    /// <returns>One result per disk that has a source, in document order.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="xml"/> is <see langword="null"/>.</exception>
    /// <exception cref="System.Xml.XmlException">The document is not one libvirt would accept, as for <see cref="ReadAsync(Stream, ImageChainResolverOptions?, CancellationToken)"/>.</exception>
    public ValueTask<ImmutableArray<LibvirtDiskChain>> ReadAsync(Stream xml, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(xml);
        return ReadAsync(xml, _options, _logger, cancellationToken);
    }
}
