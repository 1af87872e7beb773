using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading.Tasks;

namespace BackingChain.Tests.Infrastructure;

/// <summary>What a finished process printed and how it exited.</summary>
internal readonly record struct ProcessResult(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>Throws with both outputs when the process failed; returns standard output otherwise.</summary>
    public string Require(string what) => ExitCode == 0
        ? StandardOutput
        : throw new InvalidOperationException($"{what} failed ({ExitCode}):\n{StandardOutput}\n{StandardError}");
}

/// <summary>
/// The one way the tests run a program to completion: arguments passed as a list (no shell quoting), both outputs
/// read concurrently (a full stderr pipe cannot stall the child), optional standard input from a file, a deadline
/// after which the whole process tree is killed.
/// </summary>
internal static class ProcessRunner
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    public static ProcessResult Run(
        string fileName,
        IEnumerable<string> arguments,
        string? workingDirectory = null,
        string? standardInputFile = null,
        IReadOnlyDictionary<string, string>? environment = null,
        TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = standardInputFile is not null,
            UseShellExecute = false,
        };
        if (workingDirectory is not null)
        {
            start.WorkingDirectory = workingDirectory;
        }

        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        if (environment is not null)
        {
            foreach ((string name, string value) in environment)
            {
                start.Environment[name] = value;
            }
        }

        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        Task feed = Task.CompletedTask;
        if (standardInputFile is not null)
        {
            feed = Task.Run(() =>
            {
                try
                {
                    using (FileStream input = File.OpenRead(standardInputFile))
                    {
                        input.CopyTo(process.StandardInput.BaseStream);
                    }

                    process.StandardInput.Close();
                }
                catch (IOException)
                {
                    // The child stopped reading (it judged the input before its end): what it printed is the answer.
                }
            });
        }

        if (!process.WaitForExit(timeout ?? DefaultTimeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', start.ArgumentList)} did not finish in {timeout ?? DefaultTimeout}");
        }

        process.WaitForExit(); // drains the redirected streams
        feed.Wait();
        return new ProcessResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}
