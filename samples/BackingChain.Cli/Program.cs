using System;
using System.Collections.Immutable;
using System.IO;
using System.Text;
using BackingChain;
using BackingChain.Chain;
using BackingChain.Cli;
using BackingChain.Editing;
using BackingChain.Interop;
using BackingChain.Trust;

// backing-chain: the command-line face of BackingChain.Core (DESIGN.md, "The command-line sample").
// Exit codes: info 0/1; check 0 safe, 1 unsafe; xml 0/1; rebase 0, 1 when refused; 2 for any usage error.
CommandLine? line = CommandLine.Parse(args, out string? usageError);
if (line is null)
{
    Console.Error.WriteLine($"backing-chain: {usageError}");
    Console.Error.WriteLine("usage: backing-chain info [-f FMT] [--backing-chain] [--output human|json] FILE");
    Console.Error.WriteLine("       backing-chain check [-f FMT] [--trust-root DIR]... [--trust-digest SHA256]... [--max-depth N] [--output human|json] FILE");
    Console.Error.WriteLine("       backing-chain xml [-f FMT] [--target DEV] FILE");
    Console.Error.WriteLine("       backing-chain rebase -b BACKING -F BACKING_FMT FILE");
    return 2;
}

ImageFormat? declared = line.Format is null ? null : ImageFormatNames.Parse(line.Format);
using Stream stdout = Console.OpenStandardOutput();

switch (line.Command)
{
    case "info":
    {
        // Like qemu-img info: references are followed as qemu-img follows them, unless trust roots are given.
        TrustPolicy policy = line.TrustRoots.Count == 0
            ? TrustPolicy.QemuCompatible
            : new TrustPolicy { TrustedRoots = [.. line.TrustRoots] };
        var options = new ImageChainResolverOptions
        {
            Policy = policy,
            MaxDepth = line.BackingChain ? line.MaxDepth ?? ImageChainResolverOptions.DefaultMaxDepth : 1,
        };
        ImageChain chain = new ImageChainResolver(options).Resolve(line.File!, declared);
        bool failed = chain.Layers.IsEmpty
            || (line.BackingChain && chain.Ending != ChainEnding.Complete);
        if (failed)
        {
            Console.Error.WriteLine($"backing-chain: {chain.ErrorMessage ?? "the image could not be read"}");
            return 1;
        }

        if (line.Output == "json")
        {
            QemuImgInfoJson.Write(stdout, chain, line.BackingChain);
        }
        else
        {
            Write(stdout, HumanOutput.Info(chain, line.BackingChain));
        }

        return 0;
    }

    case "check":
    {
        var policy = new TrustPolicy
        {
            TrustedRoots = [.. line.TrustRoots],
            TrustedDigests = [.. line.TrustDigests],
        };
        var options = new ImageChainResolverOptions
        {
            Policy = policy,
            MaxDepth = line.MaxDepth ?? ImageChainResolverOptions.DefaultMaxDepth,
        };
        ImageChain chain = new ImageChainResolver(options).Resolve(line.File!, declared);
        TrustReport report = TrustEvaluator.Evaluate(chain, policy);
        if (line.Output == "json")
        {
            TrustReportJson.Write(stdout, report);
        }
        else
        {
            Write(stdout, HumanOutput.Check(report));
        }

        return report.IsSafe ? 0 : 1;
    }

    case "xml":
    {
        // The default policy gates every reference before it is opened; the XML is written only for a
        // complete chain the policy accepts, since it declares every format to libvirt.
        TrustPolicy policy = TrustPolicy.Default;
        ImageChain chain = new ImageChainResolver(new ImageChainResolverOptions { Policy = policy }).Resolve(line.File!, declared);
        if (!LibvirtDiskXml.CanWrite(chain, policy, out string? reason))
        {
            Console.Error.WriteLine($"backing-chain: {reason}");
            return 1;
        }

        Write(stdout, LibvirtDiskXml.ToXml(chain, line.Target ?? LibvirtDiskXml.DefaultTarget, policy));
        return 0;
    }

    case "rebase":
    {
        // Like qemu-img rebase -u: only the header changes; an empty -b removes the backing file.
        string file = line.File!;
        string backing = line.BackingName!;
        try
        {
            if (backing.Length == 0)
            {
                BackingFileEditor.RemoveBackingFileAsync(file).AsTask().GetAwaiter().GetResult();
                return 0;
            }

            bool recorded = BackingFileEditor.SetBackingFileAsync(file, backing, line.BackingFormat!).AsTask().GetAwaiter().GetResult();
            if (!recorded)
            {
                Console.Error.WriteLine($"backing-chain: warning: the image cannot record the backing format '{line.BackingFormat}'; it will be probed");
            }

            return 0;
        }
        catch (BackingEditException ex)
        {
            Console.Error.WriteLine($"backing-chain: Could not change the backing file to '{backing}': {ex.Message}");
            return 1;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"backing-chain: Could not open '{file}': {OneLine(ex.Message)}");
            return 1;
        }
    }

    default:
        Console.Error.WriteLine($"backing-chain: '{line.Command}' is not available in this build yet");
        return 2;
}

static string OneLine(string text) => text.ReplaceLineEndings(" ");

static void Write(Stream stream, string text)
{
    byte[] bytes = Encoding.UTF8.GetBytes(text);
    stream.Write(bytes);
}
