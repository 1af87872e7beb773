using System.IO;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// A tree of folders nested deeper than PATH_MAX (4,096 bytes), made the only way one can be: by relative mkdir and
/// cd from inside, in a shell, with an image at the bottom. .NET cannot delete it by name; rm -rf walks it by
/// descriptors.
/// </summary>
internal static class DeepTree
{
    /// <summary>The name of each level: 200 bytes, so that 25 levels make about 5,000.</summary>
    public static readonly string Level = new('d', 200);

    /// <summary>Builds 25 levels under <paramref name="directory"/>, a qcow2 image at the bottom; returns the path of the bottom folder.</summary>
    public static string Build(string directory)
    {
        ProcessRunner.Run(
            "bash",
            ["-c", $"set -e; cd \"$1\"; for i in $(seq 1 25); do mkdir {Level}; cd {Level}; done; qemu-img create -q -f qcow2 -u -b /etc/shadow -F raw deep.qcow2 1M || : > deep.qcow2", "bash", directory])
            .Require("building a tree deeper than PATH_MAX");
        return directory + string.Concat(System.Linq.Enumerable.Repeat("/" + Level, 25));
    }

    /// <summary>Removes the levels under <paramref name="directory"/>.</summary>
    public static void Remove(string directory) => ProcessRunner.Run("rm", ["-rf", Path.Combine(directory, Level)]);
}
