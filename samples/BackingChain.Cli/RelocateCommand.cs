using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Editing;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Cli;

/// <summary>
/// <c>relocate [--dry-run] --from OLD --to NEW IMAGE...</c>: after a tree of images was moved, each image's backing
/// name is recomputed (relative where image and backing image moved together, absolute otherwise) and written with
/// its recorded format kept. Every image is planned before any is written, so a name that does not fit stops the
/// run before the first change; the dry run prints the same plan and writes nothing.
/// </summary>
internal static class RelocateCommand
{
    /// <summary>Runs the command; returns the exit code (0, or 1 when an image cannot be relocated or is left partly undone).</summary>
    public static async Task<int> RunAsync(CommandLine line, TextWriter output)
    {
        var plans = new List<BackingRelocation>(line.Images.Count);
        var standalone = new Dictionary<string, ImageFormat>(StringComparer.Ordinal);
        bool failed = false;
        foreach (string image in line.Images)
        {
            try
            {
                plans.Add(BackingRelocation.Plan(image, line.From!, line.To!));
            }
            catch (BackingEditException ex)
            {
                // A raw base (or any image that names no other file) among the images moved: nothing in it to relocate.
                if (ex.Error == BackingEditError.UnsupportedFormat && await NamesNoFileAsync(image) is ImageFormat format)
                {
                    standalone.Add(image, format);
                    continue;
                }

                failed = true;
                Console.Error.WriteLine($"backing-chain: Could not relocate '{HumanOutput.Escape(image)}': {HumanOutput.Escape(ex.Message)}");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                failed = true;
                Console.Error.WriteLine($"backing-chain: Could not open '{HumanOutput.Escape(image)}': {SystemErrors.Describe(ex)}");
            }
            catch (ArgumentException ex)
            {
                failed = true;
                Console.Error.WriteLine($"backing-chain: Could not relocate '{HumanOutput.Escape(image)}': {HumanOutput.Escape(ex.Message.Split(" (Parameter", 2)[0])}");
            }
        }

        if (failed)
        {
            // Nothing is written when any image cannot be planned: a half-relocated tree is worse than an unmoved one.
            return 1;
        }

        foreach ((string image, ImageFormat format) in standalone)
        {
            output.WriteLine($"{HumanOutput.Escape(image)}: {format.GetQemuName()} image naming no other file, unchanged");
        }

        string verb = line.DryRun ? "would rewrite" : "rewrote";
        foreach (BackingRelocation plan in plans)
        {
            string image = HumanOutput.Escape(plan.ImagePath);
            if (plan.ChangesBackingName)
            {
                if (!line.DryRun)
                {
                    try
                    {
                        plan.Apply();
                    }
                    catch (BackingEditException ex)
                    {
                        failed = true;
                        Console.Error.WriteLine($"backing-chain: Could not relocate '{image}': {HumanOutput.Escape(ex.Message)}");
                        continue;
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        failed = true;
                        Console.Error.WriteLine($"backing-chain: Could not open '{image}': {SystemErrors.Describe(ex)}");
                        continue;
                    }
                }

                string format = plan.BackingFormat is null ? "no backing format recorded, kept so" : $"backing format {HumanOutput.Escape(plan.BackingFormat)} kept";
                output.WriteLine($"{image}: {verb} backing file '{HumanOutput.Escape(plan.StoredName!)}' -> '{HumanOutput.Escape(plan.NewName!)}' ({format})");
            }
            else
            {
                output.WriteLine(plan.StoredName is null
                    ? $"{image}: no backing file, unchanged"
                    : $"{image}: backing file '{HumanOutput.Escape(plan.StoredName)}' still holds, unchanged");
            }

            if (plan.LeavesDataFileName)
            {
                // The in-place editor rewrites the backing name only. qemu-img amend can rewrite the data file name, but
                // opens the data file first: the options name the moved one explicitly.
                failed = true;
                string imagePath = Path.GetFullPath(plan.ImagePath);
                string dataPath = plan.RelocatedDataFileName!;
                string options = $"driver=qcow2,file.filename={QemuOption(imagePath)},data-file.driver=file,data-file.filename={QemuOption(dataPath)}";
                Console.Error.WriteLine($"backing-chain: '{image}': the external data file name '{HumanOutput.Escape(plan.DataFileName!)}' is not relocated; "
                    + $"run: qemu-img amend --image-opts {ShellQuote(options)} -o {ShellQuote("data_file=" + QemuOption(plan.RelocatedDataFileName!))}");
            }
        }

        return failed ? 1 : 0;
    }

    /// <summary>The format of an image that names no other file (as probed, opening nothing it names), or <see langword="null"/>.</summary>
    private static async Task<ImageFormat?> NamesNoFileAsync(string image)
    {
        ImageChain chain = await new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.Default, MaxDepth = 1 }).ResolveAsync(image);
        return chain.Layers.Length == 1 && chain.Layers[0].References.IsEmpty ? chain.Layers[0].Format : null;
    }

    /// <summary>A value inside qemu's option syntax, where a comma is written twice.</summary>
    private static string QemuOption(string value) => value.Replace(",", ",,", StringComparison.Ordinal);

    // A POSIX shell word: single quotes, each embedded quote closed, escaped and reopened.
    private static string ShellQuote(string word) => "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
