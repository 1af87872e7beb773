using System;
using BackingChain.Chain;
using Microsoft.Extensions.Logging;

namespace BackingChain.Walk;

/// <summary>The resolver's log messages, source-generated so that disabled levels cost nothing.</summary>
internal static partial class ResolverLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Read layer {Index} '{Name}' as {Format} ({FormatSource})")]
    public static partial void LayerRead(ILogger logger, int index, string name, ImageFormat format, FormatSource formatSource);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Did not open '{Name}' named by layer {Index}: not allowed by the trust policy")]
    public static partial void ReferenceRefused(ILogger logger, string name, int index);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Chain of '{Top}' ended {Ending} after {Count} layer(s)")]
    public static partial void ChainEnded(ILogger logger, string top, ChainEnding ending, int count);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Could not open '{Name}': {Reason}")]
    public static partial void OpenFailed(ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 5, Level = LogLevel.Error, Message = "The reader of '{Name}' failed on bytes it did not validate; reported as a malformed header")]
    public static partial void ReaderFault(ILogger logger, string name, Exception exception);
}
