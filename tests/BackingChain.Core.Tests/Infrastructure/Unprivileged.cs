using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.IO;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// Runs the CLI as a user without privileges (nobody, 65534), as a store is scanned by a service account: root reads
/// every folder whatever its mode, so what a scan cannot see can only be shown by someone who cannot see it. Tests
/// that run as root switch with <c>setpriv</c>, else <c>runuser</c>; tests that do not run as root run the CLI as
/// they are.
/// </summary>
internal static class Unprivileged
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "backing-chain.dll");

    // The CLI writes nothing under HOME, but the host may look there: give it a place every user may read.
    private static readonly Dictionary<string, string> Environment = new() { ["HOME"] = Path.GetTempPath(), ["DOTNET_CLI_HOME"] = Path.GetTempPath() };

    private static readonly Lazy<(string[]? Prefix, string? Missing)> Runner = new(Find);

    /// <summary>Why the CLI cannot be run without privileges here, or <see langword="null"/>.</summary>
    public static string? MissingReason => Runner.Value.Missing;

    /// <summary>Runs the built CLI as the unprivileged user.</summary>
    public static ProcessResult RunCli(string workingDirectory, params string[] arguments)
    {
        string[] prefix = Runner.Value.Prefix ?? throw new InvalidOperationException(MissingReason);
        string[] command = [.. prefix, "dotnet", Dll, .. arguments];
        return ProcessRunner.Run(command[0], command[1..], workingDirectory, environment: Environment);
    }

    private static (string[]? Prefix, string? Missing) Find()
    {
        if (!System.Environment.IsPrivilegedProcess)
        {
            return ([], null);
        }

        string[][] candidates =
        [
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
            ["runuser", "-u", "nobody", "--"],
        ];
        var failures = new List<string>();
        foreach (string[] prefix in candidates)
        {
            try
            {
                ProcessResult result = ProcessRunner.Run(prefix[0], [.. prefix[1..], "dotnet", Dll, "--version"], Path.GetTempPath(), environment: Environment);
                if (result.ExitCode == 0)
                {
                    return (prefix, null);
                }

                failures.Add($"{prefix[0]}: exit {result.ExitCode} {result.StandardError.Trim()}");
            }
            catch (Win32Exception ex)
            {
                failures.Add($"{prefix[0]}: {ex.Message}");
            }
        }

        return (null, $"the CLI cannot be run as nobody here (the tests run as root): {string.Join("; ", failures)}");
    }
}

/// <summary>A fact that needs the CLI run without privileges and the oracle: skipped, with the reason shown, otherwise.</summary>
internal sealed class UnprivilegedFactAttribute : FactAttribute
{
    public UnprivilegedFactAttribute()
    {
        if (!QemuImg.IsAvailable)
        {
            Skip = QemuImg.MissingReason;
        }
        else if (Unprivileged.MissingReason is string reason)
        {
            Skip = reason;
        }
    }
}
