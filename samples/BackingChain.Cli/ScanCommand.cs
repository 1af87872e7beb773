using System;
using System.Collections.Immutable;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Store;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Cli;

/// <summary>
/// <c>backing-chain scan DIR</c>: every image of a store judged once, and the store as a graph. Exit 0 when every
/// image is safe, 1 otherwise (or when the directory cannot be scanned).
/// </summary>
internal static class ScanCommand
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        IndentSize = 4,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static async Task<int> RunAsync(CommandLine line, ImageChainResolverOptions walk, Stream stdout)
    {
        var scanner = new ImageStoreScanner(new ImageStoreScannerOptions(walk));

        // Ctrl+C stops the walks and ends with a line, not a half-written document.
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;

        // The progress line is for a person watching a terminal; a pipe or a file gets none.
        using Progress? progress = Console.IsErrorRedirected ? null : new Progress(line.File!);
        StoreGraph graph;
        try
        {
            graph = await scanner.ScanGraphAsync(line.File!, progress, cancel.Token);
        }
        catch (DirectoryNotFoundException)
        {
            progress?.Clear();
            Console.Error.WriteLine($"backing-chain: Could not open '{HumanOutput.Escape(line.File!)}': No such directory");
            return 1;
        }
        catch (OperationCanceledException)
        {
            progress?.Clear();
            Console.Error.WriteLine("backing-chain: the scan was interrupted");
            return 1;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }

        progress?.Clear();
        if (line.Output == "json")
        {
            WriteJson(stdout, graph);
        }
        else
        {
            byte[] text = Encoding.UTF8.GetBytes(Human(graph, walk.Policy));
            stdout.Write(text);
        }

        return graph.Unsafe.IsEmpty ? 0 : 1;
    }

    public static string Human(StoreGraph graph, TrustPolicy policy)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"store: {HumanOutput.Escape(graph.Directory)} ({graph.Images.Length} image(s))\n");

        Section(text, "not scanned", graph.Unscanned, image => $"{image.ScanProblem!.Code}: {image.ScanProblem.Message}");
        Section(text, "unsafe", [.. graph.Unsafe.Where(static image => image.ScanProblem is null)], image =>
        {
            TrustReport report = image.Report;
            string why = report.Reason.GetStableName();
            return report.Findings.IsEmpty ? why : $"{why}: {report.Findings[0].Message}";
        });
        Section(text, "broken chains", graph.BrokenChains, image => image.Report.Chain.ErrorMessage ?? "a file of the chain is missing");
        Section(text, "backing format not recorded", graph.UnrecordedBackingFormat, image =>
            image.Report.Remediation.IsEmpty ? $"backing file {image.Backing!.StoredName}" : $"fix: {image.Report.Remediation[0]}");
        Section(text, "orphans (no backing file, used by no image)", graph.Orphans, image => FormatOf(image));

        int bases = 0;
        var usage = new StringBuilder();
        foreach (StoreImage image in graph.Images)
        {
            ImmutableArray<StoreImage> direct = graph.GetDependents(image);
            if (!direct.IsEmpty)
            {
                bases++;
                int all = graph.GetDependents(image, transitive: true).Length;
                usage.Append(CultureInfo.InvariantCulture, $"  {HumanOutput.Escape(image.Path)}: used by {direct.Length} image(s) directly, {all} in all\n");
            }
        }

        if (bases > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"bases ({bases}):\n").Append(usage);
        }

        text.Append(CultureInfo.InvariantCulture,
            $"verdict: {(graph.Unsafe.IsEmpty ? "safe" : "unsafe")} ({graph.Images.Length} image(s): {graph.Images.Length - graph.Unsafe.Length} safe, {graph.Unsafe.Length} unsafe, {graph.BrokenChains.Length} broken, {graph.Orphans.Length} orphan(s), {graph.UnrecordedBackingFormat.Length} without backing format{(graph.Unscanned.IsEmpty ? "" : $", {graph.Unscanned.Length} not scanned")})\n");
        if (policy.TrustedRoots.IsEmpty && graph.Unsafe.Any(static image => image.Report.Reason == TrustReason.ProbedWithUntrustedReferences))
        {
            text.Append("hint: probed backing files are trusted only under a trust root: --trust-root DIR\n");
        }

        return text.ToString();
    }

    public static void WriteJson(Stream stream, StoreGraph graph)
    {
        using (var writer = new Utf8JsonWriter(stream, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("directory", graph.Directory);
            writer.WriteString("verdict", graph.Unsafe.IsEmpty ? "safe" : "unsafe");
            writer.WriteStartObject("summary");
            writer.WriteNumber("images", graph.Images.Length);
            writer.WriteNumber("safe", graph.Images.Length - graph.Unsafe.Length);
            writer.WriteNumber("unsafe", graph.Unsafe.Length);
            writer.WriteNumber("broken", graph.BrokenChains.Length);
            writer.WriteNumber("orphans", graph.Orphans.Length);
            writer.WriteNumber("unrecorded-backing-format", graph.UnrecordedBackingFormat.Length);
            writer.WriteNumber("not-scanned", graph.Unscanned.Length);
            writer.WriteEndObject();

            writer.WriteStartArray("images");
            foreach (StoreImage image in graph.Images)
            {
                WriteImage(writer, graph, image);
            }

            writer.WriteEndArray();
            Paths(writer, "broken", graph.BrokenChains);
            Paths(writer, "orphans", graph.Orphans);
            Paths(writer, "unsafe", graph.Unsafe);
            Paths(writer, "unrecorded-backing-format", graph.UnrecordedBackingFormat);
            Paths(writer, "not-scanned", graph.Unscanned);
            writer.WriteEndObject();
        }

        stream.WriteByte((byte)'\n');
    }

    private static void WriteImage(Utf8JsonWriter writer, StoreGraph graph, StoreImage image)
    {
        TrustReport report = image.Report;
        ImageChain chain = report.Chain;
        writer.WriteStartObject();
        writer.WriteString("filename", image.Path);
        if (chain.Layers.IsEmpty)
        {
            writer.WriteNull("format");
        }
        else
        {
            writer.WriteString("format", chain.Layers[0].Format.GetQemuName());
        }

        writer.WriteString("verdict", report.IsSafe ? "safe" : "unsafe");
        writer.WriteString("reason", report.Reason.GetStableName());
        if (image.ScanProblem is { } problem)
        {
            writer.WriteString("not-scanned", problem.Code);
        }
        else
        {
            writer.WriteNull("not-scanned");
        }

        writer.WriteString("ending", chain.Ending == ChainEnding.TooDeep ? "too-deep" : chain.Ending.ToString().ToLowerInvariant());
        if (image.Backing is { } backing)
        {
            writer.WriteStartObject("backing");
            writer.WriteString("name", backing.StoredName);
            if (backing.FullName is null)
            {
                writer.WriteNull("full-name");
            }
            else
            {
                writer.WriteString("full-name", backing.FullName);
            }

            if (backing.RecordedFormat is null)
            {
                writer.WriteNull("format");
            }
            else
            {
                writer.WriteString("format", backing.RecordedFormat);
            }

            writer.WriteEndObject();
        }
        else
        {
            writer.WriteNull("backing");
        }

        writer.WriteStartArray("chain");
        foreach (ChainLayer layer in chain.Layers)
        {
            writer.WriteStringValue(layer.FileName);
        }

        writer.WriteEndArray();
        Paths(writer, "used-by", graph.GetDependents(image));
        FindingsJson.Write(writer, "findings", report.Findings);
        writer.WriteStartArray("remediation");
        foreach (string command in report.Remediation)
        {
            writer.WriteStringValue(command);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void Paths(Utf8JsonWriter writer, string name, ImmutableArray<StoreImage> images)
    {
        writer.WriteStartArray(name);
        foreach (StoreImage image in images)
        {
            writer.WriteStringValue(image.Path);
        }

        writer.WriteEndArray();
    }

    private static void Section(StringBuilder text, string title, ImmutableArray<StoreImage> images, Func<StoreImage, string> detail)
    {
        if (images.IsEmpty)
        {
            return;
        }

        text.Append(CultureInfo.InvariantCulture, $"{title} ({images.Length}):\n");
        foreach (StoreImage image in images)
        {
            text.Append(CultureInfo.InvariantCulture, $"  {HumanOutput.Escape(image.Path)}: {HumanOutput.Escape(detail(image))}\n");
        }
    }

    private static string FormatOf(StoreImage image) => image.Report.Chain.Layers.IsEmpty ? "unread" : image.Report.Chain.Layers[0].Format.GetQemuName();

    /// <summary>One line on the terminal, rewritten at most ten times a second.</summary>
    private sealed class Progress : IProgress<int>, IDisposable
    {
        private readonly string _directory;
        private long _lastTicks;
        private bool _shown;

        public Progress(string directory) => _directory = directory;

        public void Report(int value)
        {
            long now = Environment.TickCount64;
            if (now - _lastTicks < 100)
            {
                return;
            }

            _lastTicks = now;
            _shown = true;
            Console.Error.Write($"\rscanning {HumanOutput.Escape(_directory)}: {value} image(s) judged");
        }

        public void Clear()
        {
            if (_shown)
            {
                Console.Error.Write("\r\u001b[K");
                _shown = false;
            }
        }

        public void Dispose() => Clear();
    }
}
