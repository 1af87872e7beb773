using System.Text.Encodings.Web;
using System.Text.Json;

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
}
