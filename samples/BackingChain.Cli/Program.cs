using System;
using System.Collections.Immutable;
using System.IO;
using System.Text;
using BackingChain;
using BackingChain.Chain;
using BackingChain.Cli;
using BackingChain.Interop;
using BackingChain.Trust;

// backing-chain: the command-line face of BackingChain.Core (DESIGN.md, "The command-line sample").
// Exit codes: info 0/1; check 0 safe, 1 unsafe; 2 for any usage error.
CommandLine? line = CommandLine.Parse(args, out string? usageError);
if (line is null)
{
    Console.Error.WriteLine($"backing-chain: {usageError}");
    Console.Error.WriteLine("usage: backing-chain info [-f FMT] [--backing-chain] [--output human|json] FILE");
    Console.Error.WriteLine("       backing-chain check [-f FMT] [--trust-root DIR]... [--trust-digest SHA256]... [--max-depth N] [--output human|json] FILE");
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

    default:
        Console.Error.WriteLine($"backing-chain: '{line.Command}' is not available in this build yet");
        return 2;
}

static void Write(Stream stream, string text)
{
    byte[] bytes = Encoding.UTF8.GetBytes(text);
    stream.Write(bytes);
}
