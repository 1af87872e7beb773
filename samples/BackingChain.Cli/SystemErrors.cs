using System;
using System.IO;
using System.Runtime.InteropServices;

namespace BackingChain.Cli;

/// <summary>
/// Words an I/O failure as qemu-img does (strerror's text). The CLI is built with <c>UseSystemResourceKeys</c>, which
/// strips .NET's own messages (NativeAOT keeps only keys such as <c>IO_FileNotFound_FileName</c>), so .NET's
/// <see cref="Exception.Message"/> is never shown: only the exception's kind or its errno is.
/// </summary>
internal static class SystemErrors
{
    public static string Describe(Exception ex) => ex switch
    {
        FileNotFoundException or DirectoryNotFoundException => "No such file or directory",
        UnauthorizedAccessException => "Permission denied",
        PathTooLongException => "File name too long",

        // On Unix an IOException built from errno carries it as the HResult; strerror comes from the C library, not from resources.
        IOException { HResult: > 0 and < 4096 } io => Marshal.GetPInvokeErrorMessage(io.HResult),
        EndOfStreamException => "Unexpected end of file",
        _ => "Input/output error",
    };

    /// <summary>
    /// The library's own sentence in an <see cref="ArgumentException"/>, without the parameter name the runtime
    /// appends to it (" (Parameter 'value')", or a resource key with <c>UseSystemResourceKeys</c>): the suffix is
    /// whatever the runtime appends to an empty message with the same parameter name.
    /// </summary>
    public static string WithoutParameterName(ArgumentException ex)
    {
        string message = ex.Message;
        if (ex.ParamName is { } name)
        {
            string suffix = new ArgumentException(string.Empty, name).Message;
            if (suffix.Length > 0 && message.EndsWith(suffix, StringComparison.Ordinal))
            {
                message = message[..^suffix.Length];
            }
        }

        return message.ReplaceLineEndings(" ");
    }
}
