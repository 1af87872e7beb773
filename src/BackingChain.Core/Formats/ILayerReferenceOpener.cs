using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Formats;

/// <summary>
/// Opens, through the trust gate, a file an image names while its reader still needs it (a VMDK extent). The walk
/// implements it once, so reading a layer creates no delegate or closure.
/// </summary>
internal interface ILayerReferenceOpener
{
    /// <summary>Opens <paramref name="reference"/>, named by the layer <paramref name="context"/> reads; <see langword="null"/> when missing, refused or not local.</summary>
    ValueTask<IImageSource?> OpenReferenceAsync(LayerReadContext context, StoredReference reference, CancellationToken cancellationToken);
}
