using System;
using Microsoft.Extensions.Logging;

namespace BackingChain.Internal;

/// <summary>
/// An <see cref="ILogger{TCategoryName}"/> that writes to another logger: the resolver takes a typed logger, and the
/// walk an entry point starts belongs in that entry point's log, under its category.
/// </summary>
internal sealed class CategoryLogger<T>(ILogger inner) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        inner.Log(logLevel, eventId, state, exception, formatter);
}
