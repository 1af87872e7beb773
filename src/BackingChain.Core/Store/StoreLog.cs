using Microsoft.Extensions.Logging;

namespace BackingChain.Store;

/// <summary>The store scanner's log messages, source-generated so that disabled levels cost nothing.</summary>
internal static partial class StoreLog
{
    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Scanning the store '{Directory}' with {Parallelism} walk(s) at once")]
    public static partial void ScanStarted(ILogger logger, string directory, int parallelism);

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "Could not list the directory '{Directory}' of the store: {Reason}")]
    public static partial void DirectoryUnreadable(ILogger logger, string directory, string reason);

    [LoggerMessage(EventId = 203, Level = LogLevel.Information, Message = "Scanned the store '{Directory}': {Count} image(s), {Unsafe} unsafe")]
    public static partial void ScanFinished(ILogger logger, string directory, int count, int @unsafe);
}
