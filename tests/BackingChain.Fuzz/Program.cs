using System;
using System.IO;
using SharpFuzz;

namespace BackingChain.Fuzz;

/// <summary>
/// <c>BackingChain.Fuzz TARGET</c> runs one target under afl-fuzz or afl-tmin (SharpFuzz out-of-process fork server);
/// <c>BackingChain.Fuzz TARGET --once [FILE]</c> runs it once on a file or standard input (replay; needs the library
/// <em>not</em> instrumented, e.g. <c>dotnet run --project tests/BackingChain.Fuzz -c Release -- TARGET --once FILE</c>);
/// <c>BackingChain.Fuzz seeds DIR [QEMU_IMAGES_DIR]</c> writes the seed corpus; <c>BackingChain.Fuzz list</c> names the targets.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.Error.WriteLine("usage: BackingChain.Fuzz TARGET [--once [FILE]] | seeds DIR [QEMU_IMAGES_DIR] | list");
            Console.Error.WriteLine("targets: " + string.Join(' ', FuzzTargets.All.Keys));
            return args.Length == 0 ? 2 : 0;
        }

        if (args[0] == "list")
        {
            foreach (string name in FuzzTargets.All.Keys)
            {
                Console.WriteLine(name);
            }

            return 0;
        }

        if (args[0] == "seeds")
        {
            if (args.Length < 2)
            {
                Console.Error.WriteLine("usage: BackingChain.Fuzz seeds DIR [QEMU_IMAGES_DIR]");
                return 2;
            }

            SeedCorpus.Write(args[1], args.Length > 2 ? args[2] : null);
            return 0;
        }

        if (!FuzzTargets.All.TryGetValue(args[0], out Action<byte[]>? target))
        {
            Console.Error.WriteLine($"unknown target '{args[0]}'; targets: {string.Join(' ', FuzzTargets.All.Keys)}");
            return 2;
        }

        if (args.Length > 1 && args[1] == "--once")
        {
            // No catch: an unexpected exception ends the process with SIGABRT (exit 134) and its stack trace.
            byte[] input = args.Length > 2 ? File.ReadAllBytes(args[2]) : ReadAll(Console.OpenStandardInput());
            target(input);
            return 0;
        }

        Fuzzer.OutOfProcess.Run(stream => target(ReadAll(stream)));
        return 0;
    }

    private static byte[] ReadAll(Stream stream)
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }
}
