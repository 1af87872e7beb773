using System;
using System.Xml;

namespace BackingChain.Interop;

/// <summary>
/// An <see cref="XmlException"/> whose <see cref="Message"/> is this library's own words, whatever the runtime's
/// resources. With line information, <see cref="XmlException"/> builds its message from a runtime resource, and a
/// program built with <c>UseSystemResourceKeys</c> (the CLI, NativeAOT) would print the resource's key
/// (<c>Xml_MessageWithErrorPosition, …</c>) instead of a sentence; this type keeps the line and position as
/// properties and says them in words.
/// </summary>
internal sealed class DomainXmlException : XmlException
{
    private readonly string _words;

    public DomainXmlException(string words, int lineNumber, int linePosition, Exception? innerException = null)
        : base(words, innerException, lineNumber, linePosition)
    {
        _words = lineNumber > 0
            ? FormattableString.Invariant($"{words} (line {lineNumber}, position {linePosition})")
            : words;
    }

    /// <inheritdoc/>
    public override string Message => _words;
}
