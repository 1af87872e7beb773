using System;
using System.Diagnostics;
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
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = inputFile is not null,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Dll);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start)!;
        System.Threading.Tasks.Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (inputFile is not null)
        {
            System.Threading.Tasks.Task feed = System.Threading.Tasks.Task.Run(() =>
            {
                using (FileStream input = File.OpenRead(inputFile))
                {
                    input.CopyTo(process.StandardInput.BaseStream);
                }

                process.StandardInput.Close();
            });
            string output = process.StandardOutput.ReadToEnd();
            feed.Wait();
            process.WaitForExit();
            return (process.ExitCode, output, stderr.Result);
        }

        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }
}
