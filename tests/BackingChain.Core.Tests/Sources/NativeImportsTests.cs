using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using BackingChain.Sources;

namespace BackingChain.Tests.Sources;

/// <summary>
/// The library must load and work on glibc 2.28 (RHEL 8, Debian 11 needs 2.31, Ubuntu 20.04 2.31): every C
/// symbol it imports must be exported by glibc 2.28. A symbol that came later fails with
/// EntryPointNotFoundException on first use, only on those systems.
/// </summary>
public sealed class NativeImportsTests
{
    /// <summary>
    /// The libc symbols the library may import, each with the glibc version that first exported it on x86-64
    /// (GLIBC_2.2.5 is the x86-64 baseline; aarch64's baseline, GLIBC_2.17, has them all too). Not here on
    /// purpose: <c>stat</c>, <c>fstat</c>, <c>lstat</c> and <c>fstatat</c>, exported only since glibc 2.33
    /// (before, they were inline wrappers around <c>__xstat</c> and friends).
    /// </summary>
    private static readonly Dictionary<string, string> Glibc228Symbols = new(StringComparer.Ordinal)
    {
        ["open"] = "GLIBC_2.2.5",
        ["openat"] = "GLIBC_2.4",
        ["pread"] = "GLIBC_2.2.5",
        ["close"] = "GLIBC_2.2.5",
        ["fsync"] = "GLIBC_2.2.5",
        ["flock"] = "GLIBC_2.2.5",
        ["fcntl"] = "GLIBC_2.2.5",
        ["readlink"] = "GLIBC_2.2.5",
        ["realpath"] = "GLIBC_2.3",
        ["free"] = "GLIBC_2.2.5",
        ["syscall"] = "GLIBC_2.2.5",
        ["statx"] = "GLIBC_2.28",
        ["fdopendir"] = "GLIBC_2.4",
        ["readdir64"] = "GLIBC_2.2.5",
        ["closedir"] = "GLIBC_2.2.5",
    };

    [Fact]
    public void Every_native_import_is_a_symbol_glibc_2_28_exports()
    {
        List<(string Method, string Library, string EntryPoint)> imports = NativeImports().ToList();

        Assert.NotEmpty(imports);
        Assert.Contains(imports, i => i.EntryPoint == "open");
        string[] unknown = imports
            .Where(i => !Glibc228Symbols.ContainsKey(i.EntryPoint))
            .Select(i => $"{i.Method}: {i.Library}!{i.EntryPoint}")
            .ToArray();
        Assert.True(unknown.Length == 0, "not exported by glibc 2.28 (or not vetted): " + string.Join(", ", unknown));
    }

    [Fact]
    public void Every_native_import_is_from_libc()
    {
        foreach ((string method, string library, _) in NativeImports())
        {
            Assert.True(library == "libc", $"{method} imports from '{library}'");
        }
    }

    /// <summary>
    /// The P/Invokes compiled into the library: [LibraryImport] generates a stub whose inner local function
    /// carries the [DllImport] (a method with the PinvokeImpl attribute), so every import is found this way.
    /// </summary>
    private static IEnumerable<(string Method, string Library, string EntryPoint)> NativeImports()
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        Assembly library = typeof(FileImageSource).Assembly;
        foreach (Type type in library.GetTypes())
        {
            foreach (MethodInfo method in type.GetMethods(all))
            {
                if ((method.Attributes & MethodAttributes.PinvokeImpl) == 0)
                {
                    continue;
                }

                DllImportAttribute import = method.GetCustomAttribute<DllImportAttribute>()!;
                yield return ($"{type.FullName}.{method.Name}", import.Value, import.EntryPoint ?? method.Name);
            }
        }
    }
}
