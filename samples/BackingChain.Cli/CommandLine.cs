using System;
using System.Collections.Generic;

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

    public List<string> TrustDigests { get; } = [];

    public int? MaxDepth { get; set; }

    /// <summary>Judge in the untrusted-image posture (<c>--untrusted</c>).</summary>
    public bool Untrusted { get; set; }

    /// <summary>Where an image read from standard input will live (<c>--name</c>), for relative references.</summary>
    public string? Name { get; set; }

    public string? Target { get; set; }

    public string? BackingName { get; set; }

    public string? BackingFormat { get; set; }

    /// <summary>Parses the arguments, or returns an error message for a usage error.</summary>
    public static CommandLine? Parse(string[] args, out string? error)
    {
        error = null;
        if (args.Length == 0)
        {
            error = "missing command (info, check, xml or rebase)";
            return null;
        }

        var line = new CommandLine { Command = args[0] };
        if (line.Command is not ("info" or "check" or "xml" or "rebase"))
        {
            error = $"unknown command '{args[0]}'";
            return null;
        }

        for (int i = 1; i < args.Length; i++)
        {
            string arg = args[i];
            string? Value()
            {
                if (i + 1 >= args.Length)
                {
                    return null;
                }

                return args[++i];
            }

            switch (arg)
            {
                case "-f":
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
                case "--output" when line.Command is "info" or "check":
                    line.Output = Value() ?? "";
                    if (line.Output is not ("human" or "json"))
                    {
                        error = "--output must be human or json";
                        return null;
                    }

                    break;
                case "--untrusted" when line.Command is "check" or "xml":
                    line.Untrusted = true;
                    break;
                case "--name" when line.Command == "check":
                    line.Name = Value();
                    if (string.IsNullOrEmpty(line.Name))
                    {
                        error = "--name needs the name the image will have";
                        return null;
                    }

                    break;
                case "--trust-root" when line.Command is "check" or "info" or "xml":
                    string? root = Value();
                    if (root is null)
                    {
                        error = "--trust-root needs a directory";
                        return null;
                    }

                    line.TrustRoots.Add(root);
                    break;
                case "--trust-digest" when line.Command is "check" or "xml":
                    string? digest = Value();
                    if (digest is null || digest.Length != 64 || !IsHex(digest))
                    {
                        error = "--trust-digest needs a SHA-256 digest in hex";
                        return null;
                    }

                    line.TrustDigests.Add(digest);
                    break;
                case "--max-depth" when line.Command is "check" or "info":
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
                        error = $"unknown option '{arg}' for '{line.Command}'";
                        return null;
                    }

                    if (line.File is not null)
                    {
                        error = "only one image may be given";
                        return null;
                    }

                    line.File = arg;
                    break;
            }
        }

        if (line.File is null)
        {
            error = "missing image file";
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

    private static bool IsHex(string text)
    {
        foreach (char c in text)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return true;
    }
}
