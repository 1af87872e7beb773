using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;

namespace BackingChain.Benchmarks;

/// <summary>
/// qcow2 chains on disk made with qemu-img: <c>layer000.qcow2</c> is the base (no backing file), and each
/// <c>layerNNN.qcow2</c> above it records the one below by relative name with <c>-F qcow2</c>, as
/// <c>qemu-img create -b layer(N-1).qcow2 -F qcow2</c> writes it. A chain of depth N has N images; the top is
/// the last. Chains are kept in the temp directory between benchmark processes (they only take a few MB).
/// </summary>
public sealed class ChainFiles
{
    private const string VirtualSize = "64M";

    private ChainFiles(string directory, string[] layers)
    {
        Directory = directory;
        Layers = layers;
    }

    /// <summary>The directory holding the chain.</summary>
    public string Directory { get; }

    /// <summary>Absolute paths, top first (the order a walk opens them in).</summary>
    public string[] Layers { get; }

    /// <summary>The top image.</summary>
    public string Top => Layers[0];

    public static ChainFiles Create(int depth)
    {
        string directory = Path.Combine(Path.GetTempPath(), "backingchain-bench", $"depth-{depth.ToString(CultureInfo.InvariantCulture)}");
        string complete = Path.Combine(directory, ".complete");
        string[] layers = new string[depth];
        for (int i = 0; i < depth; i++)
        {
            layers[depth - 1 - i] = Path.Combine(directory, Name(i));
        }

        if (!File.Exists(complete))
        {
            if (System.IO.Directory.Exists(directory))
            {
                System.IO.Directory.Delete(directory, recursive: true);
            }

            System.IO.Directory.CreateDirectory(directory);
            QemuImg(directory, "create", "-q", "-f", "qcow2", Name(0), VirtualSize);
            for (int i = 1; i < depth; i++)
            {
                // -u: the size is given, so qemu-img need not open the (growing) chain below.
                QemuImg(directory, "create", "-q", "-f", "qcow2", "-u", "-b", Name(i - 1), "-F", "qcow2", Name(i), VirtualSize);
            }

            File.WriteAllText(complete, "");
        }

        return new ChainFiles(directory, layers);
    }

    private static string Name(int index) => $"layer{index.ToString("D3", CultureInfo.InvariantCulture)}.qcow2";

    private static void QemuImg(string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo("qemu-img") { WorkingDirectory = workingDirectory, UseShellExecute = false, RedirectStandardError = true };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException("qemu-img did not start");
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"qemu-img {string.Join(' ', arguments)} failed: {error}");
        }
    }
}
