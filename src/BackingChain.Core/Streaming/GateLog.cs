using Microsoft.Extensions.Logging;

namespace BackingChain.Streaming;

/// <summary>The upload gate's log messages, source-generated so that disabled levels cost nothing.</summary>
internal static partial class GateLog
{
    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Accepted upload '{Name}': {Format} ({FormatSource}), {Length} bytes, {Reason}")]
    public static partial void Accepted(ILogger logger, string name, string format, string formatSource, long length, string reason);

    // A rejection is the gate doing its job, but it is also what an attack looks like: a warning, with the stable reason.
    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Rejected upload '{Name}': {Reason} ({FindingCount} finding(s), first: {FirstFinding})")]
    public static partial void Rejected(ILogger logger, string name, string reason, int findingCount, string firstFinding);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "Upload '{Name}' ended before it could be judged: {Error}")]
    public static partial void Abandoned(ILogger logger, string name, string error);
}
