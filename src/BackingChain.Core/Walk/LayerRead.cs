using BackingChain.Detection;
using BackingChain.Formats;

using BackingChain.Chain;

namespace BackingChain.Walk;

/// <summary>
/// What reading one layer gives the walk: the facts (null when the walk ends here), the format used and the one
/// probed, thorough detection when it ran, and how and why the walk ends when it does.
/// </summary>
/// <param name="Facts">The reader's facts, or <see langword="null"/> when the layer could not be described.</param>
/// <param name="Used">The format the layer was read as.</param>
/// <param name="Probed">The format its head probes as.</param>
/// <param name="Detection">Thorough detection, when the layer got it.</param>
/// <param name="Failure">How the walk ends at this layer, or <see langword="null"/> when it was read.</param>
/// <param name="Error">Why, or <see langword="null"/>.</param>
internal readonly record struct LayerRead(
    LayerFacts? Facts, ImageFormat Used, ImageFormat Probed, ThoroughDetection? Detection, ChainEnding? Failure, string? Error);
