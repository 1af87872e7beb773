using System;
using System.Collections.Immutable;
using System.IO;
using System.IO.Pipelines;
using System.Text;
using BackingChain;
using BackingChain.Chain;
using BackingChain.Cli;
using BackingChain.Editing;
using BackingChain.Interop;
using BackingChain.Sources;
using BackingChain.Streaming;
using BackingChain.Trust;
using BackingChain.Walk;

// backing-chain: the command-line face of BackingChain.Core (its contract: docs/design.md, "The command-line sample").
// Exit codes: info 0/1; check 0 safe, 1 unsafe (or a --fix refused); scan 0 every image safe, 1 otherwise; xml 0/1; domain 0 safe and without drift, 1 otherwise;
// rebase and relocate 0, 1 when refused;
// 2 for any usage error; -h/--help and --version exit 0.
CommandLine? line = CommandLine.Parse(args, out string? usageError, out string? usageCommand);
if (line is null)
{
    // Which option was wrong, and the one usage line of that command: not every command's.
    Console.Error.WriteLine($"backing-chain: {HumanOutput.Escape(usageError!)}");
    Console.Error.WriteLine(CommandLine.UsageLine(usageCommand));
    return 2;
}

if (line.Version)
{
    Console.Out.WriteLine($"backing-chain version {VersionOf(typeof(CommandLine).Assembly)} (BackingChain.Core {VersionOf(typeof(ImageChain).Assembly)})");
    return 0;
}

if (line.Help)
{
    Console.Out.Write(CommandLine.HelpText(line.Command));
    return 0;
}

ImageFormat? declared = line.Format is null ? null : ImageFormatNames.Parse(line.Format);
using Stream stdout = Console.OpenStandardOutput();

switch (line.Command)
{
    case "info":
    {
        // Like qemu-img info: references are followed as qemu-img follows them, unless trust roots are given.
        string? policyError = null;
        TrustPolicy? policy = line.TrustRoots.Count == 0 && line.TrustUrls.Count == 0 ? TrustPolicy.QemuCompatible : BuildPolicy(line, out policyError);
        if (policy is null)
        {
            Console.Error.WriteLine($"backing-chain: {policyError}");
            return 2;
        }

        // One layer unless the chain was asked for; the walk's other settings as every command has them.
        var options = line.BackingChain ? Walk(line, policy) : new ImageChainResolverOptions(Walk(line, policy)) { MaxDepth = 1 };
        ImageChain? chain = (await CheckAsync(options, line.File!, declared, policy))?.Chain;
        if (chain is null)
        {
            return 1;
        }

        // A parent named only by a Windows path ends the walk without failing it: the layers read are shown, and the parent named.
        string? windowsParent = line.BackingChain ? HumanOutput.UnopenedWindowsParent(chain) : null;
        bool failed = chain.Layers.IsEmpty
            || (line.BackingChain && chain.Ending != ChainEnding.Complete && windowsParent is null);
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

        if (windowsParent is not null)
        {
            Console.Error.WriteLine($"backing-chain: {windowsParent}");
        }

        return 0;
    }

    case "check":
    {
        TrustPolicy? policy = BuildPolicy(line, out string? policyError);
        if (policy is null)
        {
            Console.Error.WriteLine($"backing-chain: {policyError}");
            return 2;
        }

        TrustReport report;
        bool fixFailed = false;
        if (line.File == "-")
        {
            // Standard input goes through the upload gate: the same walk and judge as a file, over a stream.
            // Read in large blocks (the console stream and the pipe reader's defaults read 4 KiB at a time): a whole
            // image streams past, and each read is a system call.
            const int StandardInputBlock = 1024 * 1024;
            var gate = new ImageUploadGate(new UploadInspectionOptions(Walk(line, policy)));
            using var input = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(0, ownsHandle: false), FileAccess.Read, bufferSize: 0);
            PipeReader body = PipeReader.Create(input, new StreamPipeReaderOptions(bufferSize: StandardInputBlock, minimumReadSize: StandardInputBlock / 2));
            UploadInspection inspection = await gate.InspectAsync(body, line.Name, declared);
            report = inspection.Report;
        }
        else
        {
            ImageChainResolverOptions options = Walk(line, policy);
            TrustReport? checkedReport = await CheckAsync(options, line.File!, declared, policy);
            if (checkedReport is null)
            {
                return 1;
            }

            report = checkedReport;
            if (line.Fix)
            {
                // The fixes the verdict allows, each change printed (beside the JSON, not in it); then the chain is judged again.
                (int changed, bool allMade) = FixCommand.Apply(report, line.Output == "json" ? Console.Error : Console.Out);
                fixFailed = !allMade;
                if (changed > 0 && await CheckAsync(options, line.File!, declared, options.Policy) is TrustReport again)
                {
                    report = again;
                }
            }
        }

        if (line.Output == "json")
        {
            TrustReportJson.Write(stdout, report);
        }
        else
        {
            Write(stdout, HumanOutput.Check(report));
        }

        return report.IsSafe && !fixFailed ? 0 : 1;
    }

    case "relocate":
        return await RelocateCommand.RunAsync(line, Console.Out);

    case "xml":
    {
        // The XML declares every format to libvirt, so it is written only for a complete chain the chosen posture accepts.
        TrustPolicy? policy = BuildPolicy(line, out string? policyError);
        if (policy is null)
        {
            Console.Error.WriteLine($"backing-chain: {policyError}");
            return 2;
        }

        TrustReport? report = await CheckAsync(Walk(line, policy), line.File!, declared, policy);
        if (report is null)
        {
            return 1;
        }

        if (!LibvirtDiskXml.TryToXml(report, line.Target ?? LibvirtDiskXml.DefaultTarget, out string? xml, out string? reason))
        {
            Console.Error.WriteLine($"backing-chain: {HumanOutput.Escape(reason)}");
            return 1;
        }

        Write(stdout, xml);
        return 0;
    }

    case "rebase":
    {
        // Like qemu-img rebase -u: only the header changes; an empty -b removes the backing file.
        string file = line.File!;
        string backing = line.BackingName!;
        if (!line.HeaderOnly)
        {
            Console.Error.WriteLine("backing-chain: note: only the header-only mode (-u) is implemented: the backing file name is changed and no data is copied, as with qemu-img rebase -u");
        }

        if (declared is ImageFormat expected)
        {
            // qemu-img opens the image as -f says and fails when it is not; nothing is written then.
            if (expected is not (ImageFormat.Qcow2 or ImageFormat.Qed))
            {
                Console.Error.WriteLine($"backing-chain: Could not change the backing file of '{HumanOutput.Escape(file)}': {line.Format} images cannot record a backing file in place (qcow2 and qed can)");
                return 1;
            }

            ImageChain image = await new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible, MaxDepth = 1 }).ResolveAsync(file, expected);
            if (image.Layers.IsEmpty)
            {
                Console.Error.WriteLine($"backing-chain: {HumanOutput.Escape(image.ErrorMessage ?? $"Could not open '{file}'")}");
                return 1;
            }
        }

        try
        {
            if (backing.Length == 0)
            {
                BackingFileEditor.RemoveBackingFile(file);
                return 0;
            }

            bool recorded = BackingFileEditor.SetBackingFile(file, backing, line.BackingFormat!);
            if (!recorded)
            {
                Console.Error.WriteLine($"backing-chain: warning: the image cannot record the backing format '{line.BackingFormat}'; it will be probed");
            }

            return 0;
        }
        catch (BackingEditException ex)
        {
            Console.Error.WriteLine($"backing-chain: Could not change the backing file to '{HumanOutput.Escape(backing)}': {HumanOutput.Escape(ex.Message)}");
            return 1;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"backing-chain: Could not open '{HumanOutput.Escape(file)}': {SystemErrors.Describe(ex)}");
            return 1;
        }
    }

    case "domain":
    {
        TrustPolicy? policy = BuildPolicy(line, out string? policyError);
        if (policy is null)
        {
            Console.Error.WriteLine($"backing-chain: {policyError}");
            return 2;
        }

        ImmutableArray<LibvirtDiskChain> disks;
        try
        {
            using FileStream xml = File.OpenRead(line.File!);
            disks = await new LibvirtDomainReader(Walk(line, policy)).ReadAsync(xml);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"backing-chain: Could not open '{HumanOutput.Escape(line.File!)}': {SystemErrors.Describe(ex)}");
            return 1;
        }
        catch (System.Xml.XmlException ex)
        {
            Console.Error.WriteLine($"backing-chain: '{HumanOutput.Escape(line.File!)}' is not a domain libvirt would read: {HumanOutput.Escape(OneLine(ex.Message))}");
            return 1;
        }

        if (line.Output == "json")
        {
            DomainOutput.WriteJson(stdout, disks);
        }
        else
        {
            Write(stdout, DomainOutput.Human(disks));
        }

        return DomainOutput.IsClean(disks) ? 0 : 1;
    }

    case "scan":
    {
        TrustPolicy? policy = BuildPolicy(line, out string? policyError);
        if (policy is null)
        {
            Console.Error.WriteLine($"backing-chain: {policyError}");
            return 2;
        }

        return await ScanCommand.RunAsync(line, Walk(line, policy), stdout);
    }

    default:
        Console.Error.WriteLine($"backing-chain: '{line.Command}' is not available in this build yet");
        return 2;
}

static string OneLine(string text) => text.ReplaceLineEndings(" ");

// Files as before; http(s) URLs through one client that follows redirects only where the policy allows (the URL
// judged is the URL read) and never waits forever (the timeout also bounds each body, see ImageSources.OpenUrlAsync).
static ImmutableArray<IImageSourceProvider> Providers() => [ImageSources.Files, ImageSources.Http(Http.Client)];

// The walk's settings of every command, from its options: one place, so --max-depth, --timeout, the trust options and
// the sources mean the same for a file, standard input, a domain and a store.
static ImageChainResolverOptions Walk(CommandLine line, TrustPolicy policy) => new()
{
    Policy = policy,
    MaxDepth = line.MaxDepth ?? ImageChainResolverOptions.Default.MaxDepth,
    SourceProviders = Providers(),
    Timeout = line.Timeout,
};

// The judged chain of a FILE or URL argument; null (after one line on stderr) when a URL cannot be opened at all.
// --timeout bounds everything: opening a top URL here, and the walk after it gets what is left of the deadline.
static async System.Threading.Tasks.Task<TrustReport?> CheckAsync(ImageChainResolverOptions options, string file, ImageFormat? declared, TrustPolicy policy)
{
    if (!file.StartsWith("http://", StringComparison.Ordinal) && !file.StartsWith("https://", StringComparison.Ordinal))
    {
        return await new ImageChainResolver(options).CheckAsync(file, declared);
    }

    long started = System.Diagnostics.Stopwatch.GetTimestamp();
    using var opening = new System.Threading.CancellationTokenSource();
    if (options.Timeout != System.Threading.Timeout.InfiniteTimeSpan)
    {
        opening.CancelAfter(options.Timeout);
    }

    IImageSource top;
    try
    {
        top = await ImageSources.OpenUrlAsync(Http.Client, file, policy, opening.Token);
    }
    catch (IOException ex)
    {
        Console.Error.WriteLine($"backing-chain: Could not open '{HumanOutput.Escape(file)}': {HumanOutput.Escape(OneLine(ex.Message))}");
        return null;
    }
    catch (OperationCanceledException)
    {
        Console.Error.WriteLine($"backing-chain: Could not open '{HumanOutput.Escape(file)}': the server did not answer within the deadline of {options.Timeout.TotalSeconds:0.###} s (--timeout)");
        return null;
    }

    using (top)
    {
        TimeSpan left = options.Timeout == System.Threading.Timeout.InfiniteTimeSpan ? options.Timeout
            : options.Timeout - System.Diagnostics.Stopwatch.GetElapsedTime(started);
        var rest = new ImageChainResolverOptions(options) { Timeout = left > TimeSpan.FromMilliseconds(1) ? left : TimeSpan.FromMilliseconds(1) };
        return await new ImageChainResolver(rest).CheckAsync(top, declared);
    }
}

static string VersionOf(System.Reflection.Assembly assembly)
{
    string version = System.Reflection.CustomAttributeExtensions.GetCustomAttribute<System.Reflection.AssemblyInformationalVersionAttribute>(assembly)?.InformationalVersion ?? "0.0.0";

    // The SDK appends "+commit"; the version people compare is the part before it.
    int plus = version.IndexOf('+', StringComparison.Ordinal);
    return plus < 0 ? version : version[..plus];
}

// The policy of the command line: the posture, and roots made absolute here, where the user's working directory is known.
static TrustPolicy? BuildPolicy(CommandLine line, out string? error)
{
    error = null;
    try
    {
        var roots = new string[line.TrustRoots.Count];
        for (int i = 0; i < roots.Length; i++)
        {
            roots[i] = Path.GetFullPath(line.TrustRoots[i]);

            // The policy checks only the spelling; a root the user mistyped is told here, before anything is judged.
            if (!Directory.Exists(roots[i]))
            {
                error = $"The trusted root '{roots[i]}' is not an existing directory.";
                return null;
            }
        }

        return new TrustPolicy
        {
            // An image on standard input is an upload, never the administrator's word, unless --host says it is.
            Posture = line.Untrusted || (line.File == "-" && !line.Host) ? TrustPosture.UntrustedImage : TrustPosture.Host,
            TrustedRoots = [.. roots],
            PinnedImages = [.. line.PinnedImages],
            TrustedUrlPrefixes = [.. line.TrustUrls],
        };
    }
    catch (ArgumentException ex)
    {
        error = SystemErrors.WithoutParameterName(ex);
        return null;
    }
}

static void Write(Stream stream, string text)
{
    byte[] bytes = Encoding.UTF8.GetBytes(text);
    stream.Write(bytes);
}
