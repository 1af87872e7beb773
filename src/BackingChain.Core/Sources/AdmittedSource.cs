using BackingChain.Chain;

namespace BackingChain.Sources;

/// <summary>A source the gate opened, and where redirects led when the protocol has them.</summary>
/// <param name="Source">The source; the caller disposes it.</param>
/// <param name="RedirectBasis">Why the redirects followed were allowed (the weakest when there were several), or <see langword="null"/> when there were none.</param>
/// <param name="ReadUrl">The URL read, in normal form, when there were redirects; otherwise <see langword="null"/>.</param>
internal readonly record struct AdmittedSource(IImageSource Source, TrustBasis? RedirectBasis, string? ReadUrl);
