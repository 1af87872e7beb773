using System.IO;

namespace BackingChain.Sources;

/// <summary>A server redirected to a URL the trust policy does not let be read; carries that URL so a finding can name it.</summary>
internal sealed class HttpRedirectRefusedException : IOException
{
    public HttpRedirectRefusedException(string target)
        : base($"the server redirected to '{target}', which the trust policy does not allow")
    {
        Target = target;
    }

    /// <summary>The refused target, in normal form.</summary>
    public string Target { get; }
}
