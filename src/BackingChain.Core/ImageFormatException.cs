using System;

namespace BackingChain;

/// <summary>
/// The one exception the library throws for malformed or unsupported image data.
/// </summary>
/// <remarks>
/// Chain-level problems (a missing backing file, a loop, a refused reference) are never thrown: the
/// resolver returns them as the chain's ending and findings.
/// </remarks>
public sealed class ImageFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ImageFormatException()
        : this(HeaderError.None, "The image data is malformed.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">The message.</param>
    public ImageFormatException(string message)
        : this(HeaderError.None, message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ImageFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an error code.</summary>
    /// <param name="error">What is wrong.</param>
    /// <param name="message">A one-line description, worded like qemu's where qemu has one.</param>
    public ImageFormatException(HeaderError error, string message)
        : base(message)
    {
        Error = error;
    }

    /// <summary>Gets what is wrong with the data.</summary>
    public HeaderError Error { get; }
}
