using System;
using System.ComponentModel;
using System.IO;

namespace BackingChain.Tests.Infrastructure;

/// <summary>Whether strace can trace here (ptrace is often denied in containers) and the oracle is present.</summary>
internal static class Strace
{
    private static readonly Lazy<string?> Missing = new(() =>
    {
        if (!QemuImg.IsAvailable)
        {
            return QemuImg.MissingReason;
        }

        try
        {
            ProcessResult result = ProcessRunner.Run("strace", ["-qq", "-o", "/dev/null", "true"], Path.GetTempPath());
            return result.ExitCode == 0 ? null : $"strace cannot trace here: {result.StandardError.Trim()}";
        }
        catch (Win32Exception)
        {
            return "strace is not installed (apt-get install strace); .ci/run installs it";
        }
    });

    /// <summary>Why a strace test cannot run here, or <see langword="null"/>.</summary>
    public static string? MissingReason => Missing.Value;
}

/// <summary>A fact that needs strace and the oracle: skipped, with the reason shown, otherwise.</summary>
internal sealed class StraceFactAttribute : FactAttribute
{
    public StraceFactAttribute()
    {
        if (Strace.MissingReason is string reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>A theory that needs strace and the oracle: skipped, with the reason shown, otherwise.</summary>
internal sealed class StraceTheoryAttribute : TheoryAttribute
{
    public StraceTheoryAttribute()
    {
        if (Strace.MissingReason is string reason)
        {
            Skip = reason;
        }
    }
}
