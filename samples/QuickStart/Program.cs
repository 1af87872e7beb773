// The README's quick start, compiled. A test checks that the README shows exactly the code between the
// "snippet" markers below, so the two cannot drift apart.
using System;
using BackingChain;
using BackingChain.Chain;
using BackingChain.Trust;

string path = args.Length > 0 ? args[0] : "samples/demo/top.qcow2";

// snippet: check-chain
var policy = new TrustPolicy { TrustedRoots = ["/var/lib/libvirt/images"] };
var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = policy });

// Declare the top image's format (like qemu-img -f); everything below it is read with the
// formats the overlays recorded, or probed and then judged by the policy.
ImageChain chain = resolver.Resolve(path, ImageFormat.Qcow2);
TrustReport report = TrustEvaluator.Evaluate(chain, policy);

foreach (ChainLayer layer in chain.Layers)
{
    Console.WriteLine($"{layer.Filename}: {layer.Format.GetQemuName()} ({layer.FormatSource}), {layer.VirtualSize} bytes");
}

foreach (ChainFinding finding in report.Findings)
{
    Console.WriteLine($"{finding.Code}: {finding.Message}");
}

Console.WriteLine(report.IsSafe ? "safe to use" : "NOT safe to use");
// end snippet

return report.IsSafe ? 0 : 1;
