using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Trust;

namespace BackingChain.Sources;

/// <summary>
/// What the walk's gate may learn of the library's own providers beyond <see cref="IImageSourceProvider"/>. A
/// caller's provider has none of it: the gate opens through <see cref="IImageSourceProvider.OpenAsync"/> alone.
/// </summary>
internal interface IKnownSourceProvider
{
    /// <summary>
    /// Whether the names it opens are local files: the gate may then open one beneath a trusted root (decided on
    /// what the kernel opened) or into the walk's spare source.
    /// </summary>
    bool OpensLocalFiles { get; }

    /// <summary>
    /// Opens a name the gate admitted. A protocol that can send the reader elsewhere (an http redirect) follows only
    /// the targets the same rule admits for <paramref name="reference"/>, and says where it led.
    /// </summary>
    /// <param name="name">The reference's full name.</param>
    /// <param name="policy">The walk's policy.</param>
    /// <param name="referrer">Where the format of the image naming the reference came from.</param>
    /// <param name="reference">The reference.</param>
    /// <param name="cancellationToken">Cancels the open.</param>
    /// <returns>The source and, when it was redirected, why and where to.</returns>
    ValueTask<AdmittedSource> OpenAdmittedAsync(string name, TrustPolicy policy, FormatSource referrer, ImageReference reference, CancellationToken cancellationToken);
}
