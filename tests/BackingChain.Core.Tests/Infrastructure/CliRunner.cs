using System;
using System.IO;

namespace BackingChain.Tests.Infrastructure;

/// <summary>Runs the built <c>backing-chain</c> CLI as a separate process, as users run it.</summary>
internal static class CliRunner
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "backing-chain.dll");

    public static (int ExitCode, string StandardOutput, string StandardError) Run(string workingDirectory, params string[] arguments) =>
        RunWithInput(workingDirectory, null, arguments);

    /// <summary>Runs the CLI with a file's bytes on its standard input (for <c>check -</c>).</summary>
    public static (int ExitCode, string StandardOutput, string StandardError) RunWithInput(string workingDirectory, string? inputFile, params string[] arguments)
    {
        ProcessResult result = ProcessRunner.Run("dotnet", [Dll, .. arguments], workingDirectory, inputFile);
        return (result.ExitCode, result.StandardOutput, result.StandardError);
    }
}
