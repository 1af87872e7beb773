using System.Collections.Generic;
using System.Linq;
using System.Text.Json.Nodes;

namespace BackingChain.Tests.Infrastructure;

/// <summary>Field-by-field comparison of two JSON documents, with a readable list of differences.</summary>
internal static class JsonComparison
{
    /// <summary>Every path where the documents differ (empty when equal). Key order is ignored, as qemu's is arbitrary.</summary>
    public static List<string> Differences(JsonNode? expected, JsonNode? actual, string path = "$")
    {
        var differences = new List<string>();
        Compare(expected, actual, path, differences);
        return differences;
    }

    private static void Compare(JsonNode? expected, JsonNode? actual, string path, List<string> differences)
    {
        switch (expected)
        {
            case JsonObject eo when actual is JsonObject ao:
                foreach (string key in eo.Select(p => p.Key).Union(ao.Select(p => p.Key)))
                {
                    if (!eo.ContainsKey(key))
                    {
                        differences.Add($"{path}.{key}: unexpected (ours: {ao[key]?.ToJsonString()})");
                    }
                    else if (!ao.ContainsKey(key))
                    {
                        differences.Add($"{path}.{key}: missing (qemu-img: {eo[key]?.ToJsonString()})");
                    }
                    else
                    {
                        Compare(eo[key], ao[key], $"{path}.{key}", differences);
                    }
                }

                break;
            case JsonArray ea when actual is JsonArray aa:
                if (ea.Count != aa.Count)
                {
                    differences.Add($"{path}: {ea.Count} elements in qemu-img's output, {aa.Count} in ours");
                }

                for (int i = 0; i < System.Math.Min(ea.Count, aa.Count); i++)
                {
                    Compare(ea[i], aa[i], $"{path}[{i}]", differences);
                }

                break;
            default:
                if (!JsonNode.DeepEquals(expected, actual))
                {
                    differences.Add($"{path}: qemu-img {expected?.ToJsonString()} vs ours {actual?.ToJsonString()}");
                }

                break;
        }
    }
}
