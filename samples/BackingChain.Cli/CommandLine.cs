using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using BackingChain.Trust;

namespace BackingChain.Cli;

/// <summary>The parsed command line. Hand-rolled so the NativeAOT binary starts as fast as qemu-img.</summary>
internal sealed class CommandLine
{
    public required string Command { get; init; }

    public string? File { get; set; }

    public string? Format { get; set; }

    public bool BackingChain { get; set; }

    public string Output { get; set; } = "human";

    public List<string> TrustRoots { get; } = [];

    public List<ImagePin> PinnedImages { get; } = [];

    /// <summary>http(s) URL prefixes whose images are trusted (<c>--trust-url</c>).</summary>
    public List<string> TrustUrls { get; } = [];

    public int? MaxDepth { get; set; }

    /// <summary>The deadline of the whole walk (<c>--timeout SECONDS</c>); the library's default when absent.</summary>
    public TimeSpan Timeout { get; set; } = global::BackingChain.Walk.ImageChainResolverOptions.Default.Timeout;

    /// <summary>Judge in the untrusted-image posture (<c>--untrusted</c>).</summary>
    public bool Untrusted { get; set; }

    /// <summary>Whether <c>--host</c> was given: the host posture even for an image read from standard input.</summary>
    public bool Host { get; set; }

    /// <summary>Where an image read from standard input will live (<c>--name</c>), for relative references.</summary>
    public string? Name { get; set; }

    public string? Target { get; set; }

    public string? BackingName { get; set; }

    public string? BackingFormat { get; set; }

    /// <summary>qemu-img rebase's <c>-u</c>: change only the header. It is the only mode implemented, so it is implied.</summary>
    public bool HeaderOnly { get; set; }

    /// <summary><c>check --fix</c>: record the missing backing formats the verdict allows, then judge again.</summary>
    public bool Fix { get; set; }

    /// <summary><c>relocate</c>: the moved directory's old and new places, the images, and whether only to print the plan.</summary>
    public string? From { get; set; }

    public string? To { get; set; }

    public bool DryRun { get; set; }

    public List<string> Images { get; } = [];

    /// <summary>The commands, each with its one-line usage (shown after a usage error) and its option list (shown by <c>--help</c>).</summary>
    public static readonly (string Name, string Usage, string Options)[] Commands =
    [
        ("info", "backing-chain info [-f FMT] [--backing-chain] [--trust-url PREFIX]... [--timeout SECONDS] [--output human|json] FILE|URL",
            "  -f FMT             the image's format (probed when absent, as qemu-img does)\n"
            + "  --backing-chain    describe every layer of the chain, top first\n"
            + "  --trust-url PREFIX with trust roots or URL prefixes given, follow only what they trust (repeatable)\n"
            + "  --timeout SECONDS  the deadline of the whole walk, every read included (default 120)\n"
            + "  --output FMT       human (qemu-img info's lines) or json (qemu-img 7.2's fields)\n"
            + "  URL                an http(s) URL, read with byte ranges as qemu's curl driver reads it\n"
            + "exit: 0, or 1 with one line on stderr\n"),
        ("check", "backing-chain check [-f FMT] [--untrusted|--host] [--trust-root DIR]... [--trust-digest SHA256=PATH]... [--trust-url PREFIX]... [--max-depth N] [--timeout SECONDS] [--fix] [--output human|json] FILE|URL|- [--name NAME]",
            "  -f FMT             the image's format, declared (otherwise probed and judged as probed)\n"
            + "  --untrusted        judge in the untrusted-image posture (uploads, tenants' images)\n"
            + "  --host             judge standard input in the host posture (it is untrusted-image by default)\n"
            + "  --trust-root DIR   trust files under DIR (repeatable)\n"
            + "  --trust-digest SHA256=PATH trust the file at PATH (or URL) when its content has this SHA-256 (repeatable)\n"
            + "  --trust-url PREFIX trust http(s) images under this URL prefix (repeatable)\n"
            + "  --max-depth N      the most layers to walk (default 200)\n"
            + "  --timeout SECONDS  the deadline of the whole walk, every read included (default 120)\n"
            + "  --fix              record missing backing formats of layers the verdict accepts (qcow2, QED: raw), then check again\n"
            + "  --output FMT       human or json\n"
            + "  -                  read the image from standard input (an upload: untrusted-image unless --host); --name NAME says where it will live\n"
            + "exit: 0 safe, 1 unsafe, 2 usage error\n"),
        ("xml", "backing-chain xml [-f FMT] [--untrusted] [--trust-root DIR]... [--trust-digest SHA256=PATH]... [--trust-url PREFIX]... [--max-depth N] [--timeout SECONDS] [--target DEV] FILE|URL",
            "  -f FMT             the image's format\n"
            + "  --untrusted        judge in the untrusted-image posture\n"
            + "  --trust-root DIR   trust files under DIR (repeatable)\n"
            + "  --trust-digest SHA256=PATH trust the file at PATH (or URL) when its content has this SHA-256 (repeatable)\n"
            + "  --trust-url PREFIX trust http(s) images under this URL prefix (repeatable)\n"
            + "  --max-depth N      the most layers to walk (default 200)\n"
            + "  --timeout SECONDS  the deadline of the whole walk, every read included (default 120)\n"
            + "  --target DEV       the guest device (default vda)\n"
            + "exit: 0 with the <disk> element, 1 when the chain is refused, 2 usage error\n"),
        ("domain", "backing-chain domain [--untrusted] [--trust-root DIR]... [--trust-url PREFIX]... [--max-depth N] [--timeout SECONDS] [--output human|json] DOMAIN.xml",
            "  --untrusted        judge each disk's chain in the untrusted-image posture\n"
            + "  --trust-root DIR   trust files under DIR (repeatable)\n"
            + "  --trust-url PREFIX trust http(s) images under this URL prefix (repeatable)\n"
            + "  --max-depth N      the most layers to walk per disk (default 200)\n"
            + "  --timeout SECONDS  the deadline of each disk's walk, every read included (default 120)\n"
            + "  --output FMT       human or json\n"
            + "  DOMAIN.xml         a <domain> (every disk) or one <disk>, as virsh dumpxml writes them\n"
            + "  each disk also gets what libvirt 9.0 will do with it: start it, start it with another chain\n"
            + "  than the images' (each difference a libvirt-* finding), or refuse it, in libvirt's words\n"
            + "exit: 0 when every disk's chain is safe, libvirt starts it with that chain and it matches its\n"
            + "  images, 1 otherwise, 2 usage error\n"),
        ("scan", "backing-chain scan [--untrusted] [--trust-root DIR]... [--trust-url PREFIX]... [--max-depth N] [--timeout SECONDS] [--output human|json] DIR",
            "  --untrusted        judge in the untrusted-image posture\n"
            + "  --trust-root DIR   trust files under DIR (repeatable); give the store itself to trust its own bases\n"
            + "  --trust-url PREFIX trust http(s) images under this URL prefix (repeatable)\n"
            + "  --max-depth N      the most layers to walk per chain (default 200)\n"
            + "  --timeout SECONDS  the deadline of each image's walk, every read included (default 120)\n"
            + "  --output FMT       human (a summary) or json (every image, its chain, who uses it)\n"
            + "  DIR                the store: every regular file under it is judged once; symbolic links are\n"
            + "                     not followed but named, with folders or files it cannot read and paths\n"
            + "                     longer than PATH_MAX (each makes the store unsafe)\n"
            + "exit: 0 when every image is safe and all of DIR was seen, 1 otherwise, 2 usage error\n"),
        ("rebase", "backing-chain rebase [-f FMT] [-u] -b BACKING [-F BACKING_FMT] FILE",
            "  -f FMT             the image's format (qcow2 or qed); checked before anything is written\n"
            + "  -u                 change only the header, as qemu-img rebase -u (the only mode implemented)\n"
            + "  -b BACKING         the new backing file name ('' removes it)\n"
            + "  -F BACKING_FMT     the backing file's format (required with a backing file)\n"
            + "exit: 0, 1 when the image cannot be changed, 2 usage error\n"),
        ("relocate", "backing-chain relocate [--dry-run] --from OLD --to NEW IMAGE...",
            "  --from OLD         the directory the images were moved from\n"
            + "  --to NEW           the directory they were moved to\n"
            + "  --dry-run          print the new names, change nothing\n"
            + "  IMAGE...           qcow2 or QED images at their new place (or outside NEW, naming images that moved)\n"
            + "exit: 0, 1 when an image cannot be relocated, 2 usage error\n"),
    ];

    /// <summary>The longest argument taken, in UTF-8 bytes: twice PATH_MAX, room for any file name and for long URLs.</summary>
    public const int MaxArgumentBytes = 8192;

    /// <summary>The one line shown when no command applies.</summary>
    public const string GeneralUsage = "usage: backing-chain {info|check|xml|domain|scan|rebase|relocate} [options] ARG  (backing-chain --help for more)";

    /// <summary>Set when <c>-h</c>/<c>--help</c> was asked for; <see cref="Command"/> is empty for the general help.</summary>
    public bool Help { get; private init; }

    /// <summary>Set for <c>--version</c>.</summary>
    public bool Version { get; private init; }

    /// <summary>The one usage line of <paramref name="command"/>, or the general one.</summary>
    public static string UsageLine(string? command)
    {
        foreach ((string name, string usage, _) in Commands)
        {
            if (name == command)
            {
                return "usage: " + usage;
            }
        }

        return GeneralUsage;
    }

    /// <summary>The help text of <paramref name="command"/>, or of every command.</summary>
    public static string HelpText(string? command)
    {
        var text = new System.Text.StringBuilder();
        if (string.IsNullOrEmpty(command))
        {
            text.Append("backing-chain: disk image chains, checked before they are used\n\n");
        }

        foreach ((string name, string usage, string options) in Commands)
        {
            if (string.IsNullOrEmpty(command) || name == command)
            {
                text.Append("usage: ").Append(usage).Append('\n').Append(options);
                if (string.IsNullOrEmpty(command))
                {
                    text.Append('\n');
                }
            }
        }

        if (string.IsNullOrEmpty(command))
        {
            text.Append("Every command: -h, --help.  backing-chain --version.  --output=json is the same as --output json.\n");
        }

        return text.ToString();
    }

    /// <summary>Parses the arguments, or returns an error message for a usage error (<paramref name="command"/> says whose usage line to show).</summary>
    public static CommandLine? Parse(string[] args, out string? error, out string? command)
    {
        error = null;
        command = null;
        if (args.Length == 0)
        {
            error = "missing command (info, check, xml, domain, scan, rebase or relocate)";
            return null;
        }

        // Every name and URL on the line is bounded before it is used or repeated in a message (the kernel allows 128 KiB).
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i].Length > MaxArgumentBytes / 3 && System.Text.Encoding.UTF8.GetByteCount(args[i]) > MaxArgumentBytes)
            {
                error = $"argument {i + 1} is longer than {MaxArgumentBytes} bytes";
                return null;
            }
        }

        if (args[0] is "-h" or "--help" or "help")
        {
            return new CommandLine { Command = "", Help = true };
        }

        if (args[0] is "-V" or "--version")
        {
            return new CommandLine { Command = "", Version = true };
        }

        if (Array.FindIndex(Commands, c => c.Name == args[0]) < 0)
        {
            error = args[0].StartsWith('-') ? $"unknown option '{args[0]}'" : $"unknown command '{args[0]}'";
            return null;
        }

        command = args[0];
        var line = new CommandLine { Command = args[0] };

        // Help wins over everything else on the line, as with qemu-img.
        foreach (string arg in args)
        {
            if (arg is "-h" or "--help")
            {
                return new CommandLine { Command = args[0], Help = true };
            }
        }

        for (int i = 1; i < args.Length; i++)
        {
            string arg = args[i];

            // qemu-img spells long options with a value as --output=json; both spellings are taken.
            string? inline = null;
            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && equals > 2)
            {
                inline = arg[(equals + 1)..];
                arg = arg[..equals];
            }

            bool valueTaken = false;
            string? Value()
            {
                valueTaken = true;
                if (inline is not null)
                {
                    return inline;
                }

                if (i + 1 >= args.Length)
                {
                    return null;
                }

                return args[++i];
            }

            switch (arg)
            {
                case "-f" when line.Command is not ("domain" or "scan"):
                    line.Format = Value();
                    if (line.Format is null)
                    {
                        error = "option -f needs a format";
                        return null;
                    }

                    break;
                case "--backing-chain" when line.Command == "info":
                    line.BackingChain = true;
                    break;
                case "--output" when line.Command is "info" or "check" or "domain" or "scan":
                    line.Output = Value() ?? "";
                    if (line.Output is not ("human" or "json"))
                    {
                        error = "--output must be human or json";
                        return null;
                    }

                    break;
                case "--untrusted" when line.Command is "check" or "xml" or "domain" or "scan":
                    line.Untrusted = true;
                    break;
                case "--host" when line.Command == "check":
                    line.Host = true;
                    break;
                case "--name" when line.Command == "check":
                    line.Name = Value();
                    if (string.IsNullOrEmpty(line.Name))
                    {
                        error = "--name needs the name the image will have";
                        return null;
                    }

                    break;
                case "--trust-root" when line.Command is "check" or "info" or "xml" or "domain" or "scan":
                    string? root = Value();
                    if (string.IsNullOrEmpty(root))
                    {
                        error = "--trust-root needs a directory";
                        return null;
                    }

                    line.TrustRoots.Add(root);
                    break;
                case "--trust-url" when line.Command is "check" or "info" or "xml" or "domain" or "scan":
                    string? prefix = Value();
                    if (string.IsNullOrEmpty(prefix))
                    {
                        error = "--trust-url needs an http(s) URL prefix";
                        return null;
                    }

                    line.TrustUrls.Add(prefix);
                    break;
                case "--trust-digest" when line.Command is "check" or "xml":
                    if (!TryParsePin(Value(), out ImagePin? pin, out string? why))
                    {
                        error = $"--trust-digest needs SHA256=PATH: {why}";
                        return null;
                    }

                    line.PinnedImages.Add(pin);
                    break;
                case "--timeout" when line.Command is "check" or "info" or "xml" or "domain" or "scan":
                    // Whole seconds or a fraction; at most a day, which no walk needs.
                    if (!double.TryParse(Value(), System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out double seconds)
                        || seconds <= 0 || seconds > 86400 || TimeSpan.FromSeconds(seconds) < TimeSpan.FromMilliseconds(1))
                    {
                        error = "--timeout needs a number of seconds greater than 0 (at most 86400)";
                        return null;
                    }

                    line.Timeout = TimeSpan.FromSeconds(seconds);
                    break;
                case "--max-depth" when line.Command is "check" or "info" or "xml" or "domain" or "scan":
                    if (!int.TryParse(Value(), out int depth) || depth < 1)
                    {
                        error = "--max-depth needs a positive number";
                        return null;
                    }

                    line.MaxDepth = depth;
                    break;
                case "--target" when line.Command == "xml":
                    line.Target = Value();
                    if (!IsDeviceName(line.Target))
                    {
                        error = "--target needs a device name such as vda";
                        return null;
                    }

                    break;
                case "-b" when line.Command == "rebase":
                    line.BackingName = Value();
                    if (line.BackingName is null)
                    {
                        error = "option -b needs a backing file name";
                        return null;
                    }

                    break;
                case "-u" when line.Command == "rebase":
                    line.HeaderOnly = true;
                    break;
                case "--fix" when line.Command == "check":
                    line.Fix = true;
                    break;
                case "--dry-run" when line.Command == "relocate":
                    line.DryRun = true;
                    break;
                case "--from" when line.Command == "relocate":
                    line.From = Value();
                    break;
                case "--to" when line.Command == "relocate":
                    line.To = Value();
                    break;
                case "-F" when line.Command == "rebase":
                    line.BackingFormat = Value();
                    if (line.BackingFormat is null)
                    {
                        error = "option -F needs a format";
                        return null;
                    }

                    break;
                default:
                    if (arg.StartsWith('-') && !(arg == "-" && line.Command == "check"))
                    {
                        error = $"unknown option '{args[i]}' for '{line.Command}'";
                        return null;
                    }

                    if (line.Command == "relocate")
                    {
                        line.Images.Add(arg);
                        line.File ??= arg;
                        break;
                    }

                    if (line.File is not null)
                    {
                        error = "only one image may be given";
                        return null;
                    }

                    line.File = arg;
                    break;
            }

            if (inline is not null && !valueTaken)
            {
                error = $"option '{arg}' takes no value";
                return null;
            }
        }

        if (line.File is null)
        {
            error = line.Command switch { "domain" => "missing domain XML file", "scan" => "missing store directory", _ => "missing image file" };
            return null;
        }

        if (line.Command == "relocate" && (string.IsNullOrEmpty(line.From) || string.IsNullOrEmpty(line.To)))
        {
            error = "relocate needs --from OLD and --to NEW";
            return null;
        }

        if (line.Host && line.Untrusted)
        {
            error = "--host and --untrusted are two postures; give one";
            return null;
        }

        if (line.Host && line.File != "-")
        {
            error = "--host is for an image read from standard input (-), which is judged in the untrusted-image posture otherwise; a file is judged in the host posture unless --untrusted is given";
            return null;
        }

        if (line.Fix && line.File == "-")
        {
            error = "--fix changes image files; it cannot fix an image read from standard input";
            return null;
        }

        if (line.Name is not null && line.File != "-")
        {
            error = "--name is for an image read from standard input (-)";
            return null;
        }

        if (line.Format is not null && !ImageFormatNames.TryParse(line.Format, out _))
        {
            error = $"Unknown driver '{line.Format}'";
            return null;
        }

        if (line.Command == "rebase")
        {
            // As qemu-img 6.1+: a backing file needs its format (-F), except when it is removed (-b '').
            if (line.BackingName is null)
            {
                error = "rebase needs -b BACKING (and -F BACKING_FMT)";
                return null;
            }

            if (line.BackingName.Length > 0 && line.BackingFormat is null)
            {
                error = "backing format must be specified (-F BACKING_FMT)";
                return null;
            }
        }

        return line;
    }

    /// <summary>libvirt's deviceName pattern for a disk target: <c>[a-zA-Z0-9_\.\-\\:/]+</c>.</summary>
    private static bool IsDeviceName(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        foreach (char c in text)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' or '\\' or ':' or '/'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// A pin as the library parses it (<see cref="ImagePin.TryParse"/>), except that a relative path is taken relative to
    /// the working directory, as every other path on the command line is; a URL is kept as written.
    /// </summary>
    private static bool TryParsePin(string? text, [NotNullWhen(true)] out ImagePin? pin, [NotNullWhen(false)] out string? error)
    {
        const int DigestLength = 64;
        if (text is { Length: > DigestLength + 1 } && text[DigestLength] == '=' && text[(DigestLength + 1)..] is string location
            && !location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !location.StartsWith("https://", StringComparison.OrdinalIgnoreCase)
            && !Path.IsPathRooted(location) && !location.Contains('\0', StringComparison.Ordinal))
        {
            text = string.Concat(text.AsSpan(0, DigestLength + 1), Path.GetFullPath(location));
        }

        return ImagePin.TryParse(text, out pin, out error);
    }
}
