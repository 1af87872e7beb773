using System;
using System.IO;

namespace BackingChain.Sources;

/// <summary>
/// The image changed while it was being read (its validator, such as an HTTP <c>ETag</c>, is no longer the one
/// the first read saw). Bytes from before and after the change would make a header that never existed, so the
/// read fails instead. The resolver reports it as an unreadable image.
/// </summary>
public sealed class ImageSourceChangedException : IOException
{
    /// <summary>Creates the exception with a default message.</summary>
    public ImageSourceChangedException()
        : base("The image changed while it was being read.")
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What changed.</param>
    public ImageSourceChangedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What changed.</param>
    /// <param name="innerException">The cause.</param>
    public ImageSourceChangedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
