using System;
using System.Buffers;
using System.IO;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace BackingChain.Interop;

/// <summary>
/// The one JSON layout every writer of the library uses: indented by four spaces like qemu-img's, and names kept as
/// they are (no \uXXXX for non-ASCII or HTML characters; control characters are still escaped).
/// </summary>
internal static class JsonOutput
{
    public static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        IndentSize = 4,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Writes one JSON document and a newline to a stream, as every synchronous writer of the library does.</summary>
    public static void Write<T>(Stream stream, T value, Action<Utf8JsonWriter, T> write)
    {
        using (var writer = new Utf8JsonWriter(stream, WriterOptions))
        {
            write(writer, value);
        }

        stream.WriteByte((byte)'\n');
    }

    /// <summary>
    /// Writes one JSON document and a newline to a stream with asynchronous writes only (ASP.NET Core refuses
    /// synchronous writes to a response body). The document is small, so it is built in memory first.
    /// </summary>
    public static async Task WriteAsync<T>(Stream stream, T value, Action<Utf8JsonWriter, T> write, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer, value);
        }

        buffer.Write("\n"u8);
        await stream.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
