using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using NetArchTest.Rules;

namespace BackingChain.Tests.Architecture;

/// <summary>
/// The layers of docs/design.md, read from the library's IL: every namespace depends only on the layers below it, no
/// two namespaces depend on each other (directly or round a longer cycle), and the page lists the same order as
/// this test. A sub-namespace belongs to its parent's layer (<c>BackingChain.Formats.Qcow2</c> is Formats).
/// </summary>
public sealed partial class LayerTests
{
    /// <summary>The layers, bottom first: each may use only those before it.</summary>
    internal static readonly string[] Order =
    [
        "BackingChain",
        "BackingChain.Internal",
        "BackingChain.Telemetry",
        "BackingChain.Formats",
        "BackingChain.Detection",
        "BackingChain.Chain",
        "BackingChain.Trust",
        "BackingChain.Sources",
        "BackingChain.Walk",
        "BackingChain.Editing",
        "BackingChain.Store",
        "BackingChain.Streaming",
        "BackingChain.Interop",
        "BackingChain.Hosting",
    ];

    private static readonly Assembly Library = typeof(ImageFormat).Assembly;

    private static readonly Lazy<Dictionary<(string From, string To), string[]>> Edges = new(FindEdges);

    [Fact]
    public void Every_namespace_of_the_library_is_in_a_layer()
    {
        string[] unplaced = Library.GetTypes()
            .Select(type => type.Namespace)
            .Where(ns => ns is not null && (ns == "BackingChain" || ns.StartsWith("BackingChain.", StringComparison.Ordinal)))
            .Select(ns => ns!)
            .Where(ns => LayerOf(ns) is null)
            .Distinct()
            .ToArray();

        Assert.True(unplaced.Length == 0, $"namespaces in no layer (add them to docs/design.md and to this test's order): {string.Join(", ", unplaced)}");
    }

    [Fact]
    public void Every_dependency_points_down_the_documented_order()
    {
        var against = new List<string>();
        foreach (((string from, string to), string[] types) in Edges.Value)
        {
            if (Array.IndexOf(Order, to) > Array.IndexOf(Order, from))
            {
                against.Add($"{from} -> {to} (by {string.Join(", ", types)})");
            }
        }

        Assert.True(against.Count == 0, "dependencies against the layer order of docs/design.md:\n" + string.Join("\n", against));
    }

    [Fact]
    public void No_namespaces_depend_on_each_other()
    {
        // Found from the edges alone, not from the order: a cycle is reported even if the order were rewritten to hide it.
        List<string>? cycle = FindCycle(Edges.Value.Keys);
        Assert.True(cycle is null, $"namespace cycle: {string.Join(" -> ", cycle ?? [])}");
    }

    [Fact]
    public void The_design_page_lists_the_layers_of_this_test()
    {
        string design = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "design.md"));
        Match line = LayerLine().Match(design);
        Assert.True(line.Success, "docs/design.md has no 'Layer order:' line");
        string[] documented = line.Groups["order"].Value.Split('→', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(Order.Select(Short), documented);
    }

    [Fact]
    public void The_edge_finder_sees_a_dependency_in_a_method_body()
    {
        // Guards the guard: the walk uses the judge only inside method bodies, and the trust layer must be seen as its dependency.
        Assert.True(Edges.Value.ContainsKey(("BackingChain.Walk", "BackingChain.Trust")));
        Assert.True(Edges.Value.ContainsKey(("BackingChain.Chain", "BackingChain")));
        Assert.False(Edges.Value.ContainsKey(("BackingChain.Chain", "BackingChain.Trust")));
    }

    /// <summary>The layer a namespace belongs to: itself or its nearest listed parent, the root only for itself.</summary>
    private static string? LayerOf(string ns) =>
        ns == "BackingChain" ? ns : Order.Skip(1).FirstOrDefault(layer => ns == layer || ns.StartsWith(layer + ".", StringComparison.Ordinal));

    private static string Short(string layer) => layer == "BackingChain" ? "(root)" : layer["BackingChain.".Length..];

    /// <summary>Every pair of layers where a type of the first uses a type of the second, with the types that do.</summary>
    private static Dictionary<(string From, string To), string[]> FindEdges()
    {
        // The root's types are named one by one: a prefix of "BackingChain" would match every type of the library.
        string[] rootTypes = Library.GetTypes()
            .Where(type => type.Namespace == "BackingChain" && !type.IsNested && type.FullName is not null)
            .Select(type => type.FullName!)
            .ToArray();

        var edges = new Dictionary<(string, string), string[]>();
        foreach (string from in Order)
        {
            foreach (string to in Order)
            {
                if (from == to)
                {
                    continue;
                }

                PredicateList types = from == "BackingChain"
                    ? Types.InAssembly(Library).That().ResideInNamespaceMatching(@"^BackingChain$")
                    : Types.InAssembly(Library).That().ResideInNamespace(from);
                string[] users = (to == "BackingChain"
                        ? types.And().HaveDependencyOnAny(rootTypes)
                        : types.And().HaveDependencyOn(to))
                    .GetTypes()
                    .Where(type => LayerOf(type.Namespace ?? "") == from)
                    .Select(type => type.FullName ?? type.Name)
                    .ToArray();
                if (users.Length > 0)
                {
                    edges[(from, to)] = users;
                }
            }
        }

        return edges;
    }

    private static List<string>? FindCycle(IEnumerable<(string From, string To)> edges)
    {
        ILookup<string, string> next = edges.ToLookup(edge => edge.From, edge => edge.To);
        var state = new Dictionary<string, int>(); // 1: on the current path, 2: done
        var path = new List<string>();

        List<string>? Visit(string node)
        {
            state[node] = 1;
            path.Add(node);
            foreach (string to in next[node])
            {
                if (state.GetValueOrDefault(to) == 1)
                {
                    return [.. path.Skip(path.IndexOf(to)), to];
                }

                if (state.GetValueOrDefault(to) == 0 && Visit(to) is { } found)
                {
                    return found;
                }
            }

            path.RemoveAt(path.Count - 1);
            state[node] = 2;
            return null;
        }

        foreach (string node in Order)
        {
            if (state.GetValueOrDefault(node) == 0 && Visit(node) is { } cycle)
            {
                return cycle;
            }
        }

        return null;
    }

    private static string RepositoryRoot()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "BackingChain.Core.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new InvalidOperationException("repository root not found");
    }

    [GeneratedRegex(@"^Layer order: (?<order>.+)$", RegexOptions.Multiline)]
    private static partial Regex LayerLine();
}
