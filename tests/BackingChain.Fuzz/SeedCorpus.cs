using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Fuzz;

/// <summary>
/// Writes the seed corpus, one folder per target: small valid images made here from the specs (bochs, cloop, dmg,
/// VMDK descriptors) plus the images run-fuzz.sh made with qemu-img, named <c>FORMAT-what.img</c>. The chain target
/// gets every seed; the upload target gets them behind a few chunk plans.
/// </summary>
internal static class SeedCorpus
{
    /// <summary>Seeds larger than this are cut (afl works best on small inputs; headers sit at the start).</summary>
    private const int MaxSeedLength = 64 * 1024;

    public static void Write(string directory, string? qemuImages)
    {
        var seeds = new List<(string Target, string Name, byte[] Bytes)>
        {
            ("bochs", "growing", ImageBytes.Bochs(1024 * 1024, 2, 512 * 1024)),
            ("bochs", "v1", ImageBytes.Bochs(1024 * 1024, 2, 512 * 1024, version: 0x00010000)),
            ("cloop", "v2", ImageBytes.Cloop(512, 4)),
            ("dmg", "plist", ImageBytes.DmgWithPlist(2048)),
            ("dmg", "rsrc", ImageBytes.DmgWithResourceFork(2048)),
            ("vmdk", "desc-flat", Encoding.ASCII.GetBytes(
                "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
                + "# Extent description\nRW 2048 FLAT \"disk-flat.vmdk\" 0\n\n# The Disk Data Base\n#DDB\nddb.virtualHWVersion = \"4\"\n")),
            ("vmdk", "desc-child", Encoding.ASCII.GetBytes(
                "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=87654321\ncreateType=\"twoGbMaxExtentSparse\"\n"
                + "parentFileNameHint=\"../base.vmdk\"\n# Extent description\nRW 4096 SPARSE \"child-s001.vmdk\"\nRDONLY 2048 ZERO\n")),
        };

        if (qemuImages is not null)
        {
            foreach (string path in Directory.EnumerateFiles(qemuImages).Order(StringComparer.Ordinal))
            {
                string file = Path.GetFileNameWithoutExtension(path);
                int dash = file.IndexOf('-', StringComparison.Ordinal);
                string target = dash > 0 ? file[..dash] : file;
                byte[] bytes = File.ReadAllBytes(path);
                if (target == "vpc" && file == "vpc-dynamic")
                {
                    seeds.Add(("vpc", "differencing", ImageBytes.VhdDifferencing(
                        bytes, Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), "base.vhd", ("W2ru", Encoding.Unicode.GetBytes(".\\base.vhd")))));
                }

                if (bytes.Length > MaxSeedLength)
                {
                    bytes = bytes[..MaxSeedLength];
                }

                seeds.Add((target, file, bytes));
            }
        }

        foreach ((string target, string name, byte[] bytes) in seeds)
        {
            if (!FuzzTargets.All.ContainsKey(target))
            {
                throw new InvalidOperationException($"seed '{name}' is for no target ('{target}')");
            }

            Save(directory, target, name, bytes);
            if (bytes.Length <= 16 * 1024)
            {
                Save(directory, "chain", $"{target}-{name}", bytes);
            }
        }

        // The upload target: option bits, plan length, plan, then the image (see UploadPath).
        byte[][] plans = [[0x00, 0, 0], [0x03, 2, 6, 200], [0x0A, 3, 0, 130, 11]];
        int n = 0;
        foreach ((string target, string name, byte[] bytes) in seeds.Where(s => s.Bytes.Length <= 16 * 1024))
        {
            byte[] plan = plans[n++ % plans.Length];
            Save(directory, "upload", $"{target}-{name}", [.. plan, .. bytes]);
        }

        Save(directory, "upload", "empty", [0, 0, 0]);
    }

    private static void Save(string directory, string target, string name, byte[] bytes)
    {
        string folder = Path.Combine(directory, target);
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, name + ".bin"), bytes);
    }
}
