using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace BackingChain.Benchmarks;

/// <summary>
/// The committed header fixtures (Fixtures/*.head: an image's first 4 KiB, made by Fixtures/make-fixtures.sh
/// with qemu-img). A new format adds its image to that script and reads it here by name.
/// </summary>
public static class Fixtures
{
    private static string Directory => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    /// <summary>The first 4 KiB of a fixture image.</summary>
    public static byte[] Head(string name) => File.ReadAllBytes(Path.Combine(Directory, name));

    /// <summary>Every fixture's file name, for benchmarks that run over all formats (the probe).</summary>
    public static IEnumerable<string> All() =>
        System.IO.Directory.EnumerateFiles(Directory, "*.head").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal);

    /// <summary>Stops a benchmark whose setup is wrong (a fixture that no longer parses measures the error path).</summary>
    public static void Expect(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"Benchmark setup check failed: {what}.");
        }
    }
}
