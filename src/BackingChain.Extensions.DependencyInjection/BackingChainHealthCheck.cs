using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using BackingChain.Walk;

namespace BackingChain.Hosting;

/// <summary>
/// Reports whether every trusted root of the registered policy can be read: a root that was removed, unmounted or
/// made unreadable since the host started trusts nothing, so uploads over bases kept there are all refused. Register
/// it with <c>services.AddHealthChecks().AddCheck&lt;BackingChainHealthCheck&gt;("backing-chain")</c>;
/// <see cref="BackingChainServiceCollectionExtensions.AddBackingChain"/> registers the check itself.
/// </summary>
/// <param name="options">The walk's settings the registered entry points use.</param>
public sealed class BackingChainHealthCheck(ImageChainResolverOptions options) : IHealthCheck
{
    /// <summary>Lists each trusted root; healthy when all can be listed, otherwise the registration's failure status, naming the roots that cannot.</summary>
    /// <param name="context">The check's registration.</param>
    /// <param name="cancellationToken">Unused: the roots are listed at once.</param>
    /// <returns>The result; its data maps each unreachable root to the reason.</returns>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var unreachable = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (string root in options.Policy.TrustedRoots)
        {
            if (Unreachable(root) is { } reason)
            {
                unreachable[root] = reason;
            }
        }

        int count = options.Policy.TrustedRoots.Length;
        HealthCheckResult result = unreachable.Count == 0
            ? HealthCheckResult.Healthy($"{count} trusted root(s) reachable.")
            : new HealthCheckResult(context.Registration.FailureStatus, $"{unreachable.Count} of {count} trusted root(s) cannot be read: {string.Join(", ", unreachable.Keys)}.", data: unreachable);
        return Task.FromResult(result);
    }

    private static string? Unreachable(string root)
    {
        try
        {
            if (!Directory.Exists(root))
            {
                return "not an existing directory";
            }

            // Listing, not only a look at the name: a directory the service may not read trusts nothing it holds.
            using IEnumerator<string> entries = Directory.EnumerateFileSystemEntries(root).GetEnumerator();
            _ = entries.MoveNext();
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }
}
