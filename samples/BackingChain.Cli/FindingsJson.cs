using System.Collections.Immutable;
using System.Text.Json;
using BackingChain.Chain;

namespace BackingChain.Cli;

/// <summary>Findings as every JSON document of the CLI spells them: an array of code, layer and message.</summary>
internal static class FindingsJson
{
    public static void Write(Utf8JsonWriter writer, string name, ImmutableArray<ChainFinding> findings)
    {
        writer.WriteStartArray(name);
        foreach (ChainFinding finding in findings)
        {
            writer.WriteStartObject();
            writer.WriteString("code", finding.Code);
            writer.WriteNumber("layer", finding.LayerIndex);
            writer.WriteString("message", finding.Message);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }
}
