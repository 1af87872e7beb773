using System;
using System.IO;
using System.Net.Http;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace BackingChain.Internal;

/// <summary>
/// Words for an exception the runtime made, never its resource text: a program built with
/// <c>UseSystemResourceKeys</c> (the CLI, NativeAOT) has only the resource's key
/// (<c>net_http_invalid_response_status_line</c>, <c>IO_FileNotFound_FileName</c>) where the sentence was. An errno
/// becomes the C library's strerror text (not a runtime resource); HTTP failures are told by their kind. Anything else
/// is taken to be this library's own exception and keeps its message.
/// </summary>
internal static class ErrorWords
{
    public static string Describe(Exception ex) => ex switch
    {
        FileNotFoundException or DirectoryNotFoundException => "No such file or directory",
        UnauthorizedAccessException => "Permission denied",
        PathTooLongException => "File name too long",
        EndOfStreamException => "Unexpected end of file",
        HttpRequestException http => http.InnerException is SocketException socket ? OneLine(socket.Message) : Describe(http.HttpRequestError),
        HttpIOException http => Describe(http.HttpRequestError),

        // SocketException's text is strerror's, from the C library.
        SocketException socket => OneLine(socket.Message),

        // On Unix an IOException built from errno carries it as the HResult.
        IOException { HResult: > 0 and < 4096 } io => Marshal.GetPInvokeErrorMessage(io.HResult),
        _ => OneLine(ex.Message),
    };

    private static string Describe(HttpRequestError error) => error switch
    {
        HttpRequestError.NameResolutionError => "the host name could not be resolved",
        HttpRequestError.ConnectionError => "the connection could not be made",
        HttpRequestError.SecureConnectionError => "the TLS connection could not be made",
        HttpRequestError.HttpProtocolError => "the server broke the HTTP protocol",
        HttpRequestError.InvalidResponse => "the server's answer is not valid HTTP",
        HttpRequestError.ResponseEnded => "the server closed the connection before its answer ended",
        HttpRequestError.ConfigurationLimitExceeded => "the server's answer is larger than the client allows",
        HttpRequestError.ProxyTunnelError => "the proxy tunnel could not be made",
        HttpRequestError.UserAuthenticationError => "the server asked for authentication",
        HttpRequestError.VersionNegotiationError => "no HTTP version could be agreed with the server",
        _ => "the request failed",
    };

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
