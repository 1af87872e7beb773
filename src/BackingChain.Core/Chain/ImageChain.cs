using System.Collections.Immutable;

namespace BackingChain.Chain;

/// <summary>
/// A resolved backing chain, ordered top (the image asked for) to base, with how the walk ended and what
/// was found on the way. Immutable.
/// </summary>
public sealed class ImageChain
{
    /// <summary>Creates a chain.</summary>
    /// <param name="layers">The layers, top first.</param>
    /// <param name="ending">How the walk ended.</param>
    /// <param name="findings">What was found.</param>
    /// <param name="errorMessage">A one-line account of what stopped the walk, when it did not complete.</param>
    public ImageChain(ImmutableArray<ChainLayer> layers, ChainEnding ending, ImmutableArray<ChainFinding> findings, string? errorMessage)
    {
        Layers = layers.IsDefault ? ImmutableArray<ChainLayer>.Empty : layers;
        Ending = ending;
        Findings = findings.IsDefault ? ImmutableArray<ChainFinding>.Empty : findings;
        ErrorMessage = errorMessage;
    }

    /// <summary>The layers, top first. Empty when the top image itself could not be read.</summary>
    public ImmutableArray<ChainLayer> Layers { get; }

    /// <summary>How the walk ended.</summary>
    public ChainEnding Ending { get; }

    /// <summary>What was found, with stable codes.</summary>
    public ImmutableArray<ChainFinding> Findings { get; }

    /// <summary>A one-line account of what stopped the walk (worded like qemu-img), or <see langword="null"/> when it completed.</summary>
    public string? ErrorMessage { get; }

    /// <summary>Whether every layer was read and the last one has no backing file.</summary>
    public bool IsComplete => Ending == ChainEnding.Complete;
}
