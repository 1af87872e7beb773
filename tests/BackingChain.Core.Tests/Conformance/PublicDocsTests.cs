using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Xml.Linq;
using BackingChain.Chain;

namespace BackingChain.Tests.Conformance;

/// <summary>
/// The XML docs a package user reads speak only of what the package gives them: a public type's or member's doc never
/// links (<c>cref</c>) to a type or member that is not public. Internal types are free to change, so a doc that
/// leads to one would promise what the package does not.
/// </summary>
public sealed class PublicDocsTests
{
    [Fact]
    public void Public_docs_link_only_to_public_types_and_members()
    {
        Assembly library = typeof(ImageChain).Assembly;
        string path = Path.ChangeExtension(library.Location, ".xml");
        XDocument docs = XDocument.Load(path);
        var problems = new List<string>();
        int publicDocs = 0;
        foreach (XElement member in docs.Descendants("member"))
        {
            string id = (string)member.Attribute("name")!;
            if (!IsPublic(library, id))
            {
                continue;
            }

            publicDocs++;
            foreach (XAttribute cref in member.Descendants().Attributes("cref"))
            {
                if (!IsPublic(library, cref.Value) && IsOurs(cref.Value))
                {
                    problems.Add($"{id} -> {cref.Value}");
                }
            }
        }

        // The walk must have seen the public surface, or an empty pass would prove nothing.
        Assert.True(publicDocs > 300, $"only {publicDocs} public docs were found in {path}");
        Assert.True(problems.Count == 0, "public docs that link to what users do not have:\n" + string.Join('\n', problems));
    }

    [Fact]
    public void The_check_sees_an_internal_link()
    {
        // The rule above is only as good as IsPublic: a known internal type and member must read as not public.
        Assembly library = typeof(ImageChain).Assembly;
        Assert.False(IsPublic(library, "T:BackingChain.Formats.Vpc.VhdFooter"));
        Assert.False(IsPublic(library, "P:BackingChain.Formats.Qcow2.Qcow2Header.Size"));
        Assert.True(IsPublic(library, "P:BackingChain.Formats.Qcow2.Qcow2Header.VirtualSize"));
        Assert.True(IsPublic(library, "M:BackingChain.Sources.ImageSources.OpenFile(System.String)"));
    }

    private static bool IsOurs(string id) => id.Length > 2 && id.AsSpan(2).StartsWith("BackingChain.", StringComparison.Ordinal);

    /// <summary>Whether a documentation id (<c>T:</c>, <c>M:</c>, <c>P:</c>, <c>F:</c>, <c>E:</c>) names something a user can reach.</summary>
    private static bool IsPublic(Assembly library, string id)
    {
        if (id.Length < 3 || id[1] != ':')
        {
            return true;
        }

        char kind = id[0];
        string name = id[2..];
        int paren = name.IndexOf('(', StringComparison.Ordinal);
        string bare = paren < 0 ? name : name[..paren];
        if (kind == 'T')
        {
            Type? type = FindType(library, bare);
            return type is null || IsVisible(type);
        }

        int dot = bare.LastIndexOf('.');
        Type? declaring = FindType(library, bare[..dot]);
        if (declaring is null)
        {
            return true;
        }

        if (!IsVisible(declaring))
        {
            return false;
        }

        string memberName = bare[(dot + 1)..].Replace('#', '.');
        int generic = memberName.IndexOf("``", StringComparison.Ordinal);
        if (generic >= 0)
        {
            memberName = memberName[..generic];
        }

        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        MemberInfo[] members = memberName == "ctor"
            ? declaring.GetConstructors(all)
            : declaring.GetMember(memberName, all);
        if (members.Length == 0)
        {
            return true;
        }

        // Overloads: the link is fine when any member of that name is visible (the analyzer already resolved the id).
        return members.Any(IsVisible);
    }

    private static Type? FindType(Assembly library, string name)
    {
        Type? type = library.GetType(name);
        if (type is not null)
        {
            return type;
        }

        // Nested types are written Outer.Inner in documentation ids and Outer+Inner in reflection.
        int dot = name.LastIndexOf('.');
        while (dot > 0)
        {
            string candidate = name[..dot] + "+" + name[(dot + 1)..].Replace('.', '+');
            type = library.GetType(candidate);
            if (type is not null)
            {
                return type;
            }

            dot = name.LastIndexOf('.', dot - 1);
        }

        return null;
    }

    private static bool IsVisible(Type type) => type.IsVisible;

    private static bool IsVisible(MemberInfo member) => member switch
    {
        MethodBase method => method.IsPublic || method.IsFamily || method.IsFamilyOrAssembly,
        PropertyInfo property => property.GetAccessors(nonPublic: true).Any(a => a.IsPublic || a.IsFamily),
        FieldInfo field => field.IsPublic || field.IsFamily,
        EventInfo e => e.AddMethod is { } add && (add.IsPublic || add.IsFamily),
        Type nested => nested.IsVisible,
        _ => true,
    };
}
