using System;

namespace BackingChain.Editing;

/// <summary>
/// <see cref="BackingFileEditor"/> refused to change an image. Nothing was written when this is thrown.
/// </summary>
public sealed class BackingEditException : Exception
{
    /// <summary>Creates the exception.</summary>
    public BackingEditException()
        : this(BackingEditError.MalformedHeader, "The image's backing file cannot be changed.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">A one-line description.</param>
    public BackingEditException(string message)
        : this(BackingEditError.MalformedHeader, message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">A one-line description.</param>
    /// <param name="innerException">The cause.</param>
    public BackingEditException(string message, Exception innerException)
        : base(message, innerException)
    {
        Error = BackingEditError.MalformedHeader;
    }

    /// <summary>Creates the exception for a reason.</summary>
    /// <param name="error">Why the change was refused.</param>
    /// <param name="message">A one-line description, worded for people.</param>
    public BackingEditException(BackingEditError error, string message)
        : base(message)
    {
        Error = error;
    }

    /// <summary>Gets why the change was refused.</summary>
    public BackingEditError Error { get; }
}
