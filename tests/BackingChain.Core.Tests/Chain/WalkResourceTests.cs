using System;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Chain;

/// <summary>What a walk holds and what a race can make it open: descriptors, confined opens, overlong uploads.</summary>
public sealed class WalkResourceTests
{
    [QemuImgFact]
    public async Task A_deep_chain_holds_at_most_two_images_open_at_once()
    {
        using var dir = new ScratchDirectory();
        const int Depth = 120;
        CreateChain(dir, Depth);

        var counting = new CountingProvider();
        var options = new ImageChainResolverOptions { SourceProviders = [counting], MaxDepth = Depth };
        ImageChain chain = await new ImageChainResolver(options).ResolveAsync(dir[$"l{Depth - 1}.img"], ImageFormat.Qcow2);

        Assert.True(chain.Ending == ChainEnding.Complete, $"{chain.Ending}: {chain.ErrorMessage}");
        Assert.Equal(Depth, chain.Layers.Length);

        // The caller's top plus the layer being read: every other layer was closed as soon as it was read.
        Assert.True(counting.MostOpen <= 2, $"{counting.MostOpen} images were open at once");
        Assert.Equal(0, counting.Open);
    }

    [QemuImgFact]
    public async Task A_file_walk_gives_back_the_descriptor_of_every_layer_it_read()
    {
        // A walk of local files closes the descriptors of the layers it has read a batch at a time (most with one
        // close_range): whatever the depth, none may outlive the walk, and none belongs to anything else.
        using var dir = new ScratchDirectory();
        const int Depth = DeferredCloses.Capacity * 3 + 7;
        CreateChain(dir, Depth);

        ImageChain chain = await new ImageChainResolver().ResolveAsync(dir[$"l{Depth - 1}.img"], ImageFormat.Qcow2);

        Assert.True(chain.Ending == ChainEnding.Complete, $"{chain.Ending}: {chain.ErrorMessage}");
        Assert.Equal(Depth, chain.Layers.Length);
        string[] open = Directory.GetFiles("/proc/self/fd")
            .Select(link => new FileInfo(link).LinkTarget)
            .Where(target => target is not null && target.StartsWith(dir.Path + "/", StringComparison.Ordinal))
            .Select(target => target!)
            .ToArray();
        Assert.True(open.Length == 0, "still open: " + string.Join(", ", open));
    }

    [StraceFact]
    public void A_walk_out_of_descriptors_gives_back_those_of_the_layers_it_read_and_opens_the_next_one()
    {
        // The walk holds up to DeferredCloses.Capacity descriptors of layers it has read. A process at its limit must
        // not lose a layer for that: the open that fails with EMFILE is made again once they are closed. strace makes
        // the kernel fail the first open of one layer, 30 layers down (30 descriptors held), with EMFILE.
        using var dir = new ScratchDirectory();
        const int Depth = 61;
        CreateChain(dir, Depth);
        (ProcessResult result, string[] opens) = InfoUnderStrace(
            dir, ["-P", "l30.img", "-e", "inject=openat:error=EMFILE:when=1"], ["--backing-chain", "--output", "json", $"l{Depth - 1}.img"]);

        Assert.True(opens.Length == 2 && opens[0].Contains("EMFILE", StringComparison.Ordinal) && opens[0].Contains("(INJECTED)", StringComparison.Ordinal), string.Join('\n', opens));
        Assert.True(result.ExitCode == 0, result.StandardError);
        JsonArray layers = JsonNode.Parse(result.StandardOutput)!.AsArray();
        Assert.Equal(Depth, layers.Count);
        Assert.Equal("l0.img", (string?)layers[^1]!["filename"]);
    }

    [StraceFact]
    public void Layers_after_the_first_two_of_one_directory_are_looked_up_from_a_descriptor_of_it()
    {
        // The kernel walks the whole path of every open by name; from the second backing file in one directory on,
        // the walk opens the directory once (O_PATH) and looks up each next layer by its last component only.
        using var dir = new ScratchDirectory();
        const int Depth = 12;
        CreateChain(dir, Depth);
        (ProcessResult result, string[] traced) = InfoUnderStrace(dir, [], ["-f", "qcow2", "--backing-chain", "--output", "json", dir[$"l{Depth - 1}.img"]]);

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal(Depth, JsonNode.Parse(result.StandardOutput)!.AsArray().Count);
        string[] opens = traced.Where(line => line.Contains(".img\"", StringComparison.Ordinal) || line.Contains($"\"{dir.Path}\"", StringComparison.Ordinal)).ToArray();
        string trace = string.Join('\n', opens);
        Assert.True(opens.Count(line => line.Contains($"openat(AT_FDCWD, \"{dir.Path}/l", StringComparison.Ordinal)) == 2, trace);
        Assert.True(opens.Count(line => line.Contains($"openat(AT_FDCWD, \"{dir.Path}\", ", StringComparison.Ordinal) && line.Contains("O_PATH", StringComparison.Ordinal)) == 1, trace);
        Assert.True(opens.Count(line => !line.Contains("AT_FDCWD", StringComparison.Ordinal) && line.Contains("\"l", StringComparison.Ordinal)) == Depth - 2, trace);
    }

    /// <summary>The CLI's <c>info</c> in <paramref name="dir"/> under <c>strace -e trace=openat</c>, with more strace options; the traced lines.</summary>
    private static (ProcessResult Result, string[] Opens) InfoUnderStrace(ScratchDirectory dir, string[] straceOptions, string[] infoArguments)
    {
        string log = dir["walk.strace"];
        ProcessResult result = ProcessRunner.Run(
            "strace",
            ["-f", "-qq", "-o", log, "-e", "trace=openat", .. straceOptions,
             "dotnet", Path.Combine(AppContext.BaseDirectory, "backing-chain.dll"), "info", .. infoArguments],
            dir.Path);
        return (result, File.ReadAllLines(log));
    }

    /// <summary>A raw base under qcow2 layers <c>l1.img</c>…, each naming the one below with its format.</summary>
    private static void CreateChain(ScratchDirectory dir, int depth)
    {
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "l0.img", "1M");
        for (int i = 1; i < depth; i++)
        {
            QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", $"l{i - 1}.img", "-F", i == 1 ? "raw" : "qcow2", $"l{i}.img", "1M");
        }
    }

    [QemuImgFact]
    public async Task A_symlink_flipped_inside_a_root_never_lets_a_file_outside_be_read_as_trusted()
    {
        using var dir = new ScratchDirectory();
        Directory.CreateDirectory(dir["root"]);
        Directory.CreateDirectory(dir["outside"]);
        QemuImg.Run(dir["root"], "create", "-q", "-f", "raw", "inside.raw", "1M");
        QemuImg.Run(dir["outside"], "create", "-q", "-f", "raw", "secret.raw", "3M");
        File.CreateSymbolicLink(dir["root/link.raw"], dir["root/inside.raw"]);

        // Probed top: the backing file is opened only because it lies in the root.
        QemuImg.Run(dir["root"], "create", "-q", "-f", "qcow2", "-u", "-b", dir["root/link.raw"], "-F", "raw", "top.qcow2", "1M");
        var policy = new TrustPolicy { TrustedRoots = [dir["root"]] };
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = policy });

        using var stop = new CancellationTokenSource();
        Task flipper = Task.Run(() =>
        {
            string temporary = dir["root/link.tmp"];
            bool outside = false;
            while (!stop.IsCancellationRequested)
            {
                outside = !outside;
                File.CreateSymbolicLink(temporary, outside ? dir["outside/secret.raw"] : dir["root/inside.raw"]);
                File.Move(temporary, dir["root/link.raw"], overwrite: true);
            }
        });

        int opened = 0;
        int refused = 0;
        string last = "";
        try
        {
            for (int i = 0; i < 300; i++)
            {
                TrustReport report = await resolver.CheckAsync(dir["root/top.qcow2"]);
                if (report.Chain.Layers.Length == 2)
                {
                    opened++;
                    Assert.Equal(1024 * 1024, report.Chain.Layers[1].VirtualSize);
                    Assert.StartsWith(dir["root"] + "/", report.Chain.Decisions[0].CanonicalPath, StringComparison.Ordinal);
                }
                else
                {
                    last = string.Join("; ", report.Findings);
                    refused++;
                    Assert.False(report.IsSafe);
                }
            }
        }
        finally
        {
            stop.Cancel();
            await flipper;
        }

        Assert.True(opened > 0 && refused > 0, $"the race was not exercised: {opened} opened, {refused} refused; {last}");
    }

    [Fact]
    public async Task An_upload_longer_than_announced_is_read_only_to_the_first_byte_past_it()
    {
        const int Announced = 64 * 1024;
        const int Sent = 4 * 1024 * 1024;
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        await pipe.Writer.WriteAsync(new byte[Sent]);
        await pipe.Writer.CompleteAsync();
        using var stored = new MemoryStream();

        UploadInspection inspection = await ImageUploadInspector.InspectAsync(
            pipe.Reader, stored, new UploadInspectionOptions { DeclaredFormat = ImageFormat.Raw, ExpectedLength = Announced });

        Assert.False(inspection.IsAccepted);
        Assert.Equal(TrustReason.LengthMismatch, inspection.Reason);
        Assert.Equal(Announced, stored.Length);
        ReadResult rest = await pipe.Reader.ReadAsync();
        Assert.Equal(Sent - Announced - 1, rest.Buffer.Length);
    }

    /// <summary>Counts the sources a walk has open at once.</summary>
    private sealed class CountingProvider : IImageSourceProvider
    {
        private int _open;
        private int _mostOpen;

        public int Open => Volatile.Read(ref _open);

        public int MostOpen => Volatile.Read(ref _mostOpen);

        public bool CanOpen(ImageReference reference) => FileImageSourceProvider.Instance.CanOpen(reference);

        public async ValueTask<IImageSource> OpenAsync(string name, CancellationToken cancellationToken = default)
        {
            IImageSource inner = await FileImageSourceProvider.Instance.OpenAsync(name, cancellationToken);

            // The caller's top is open too, so one more than counted here.
            int now = Interlocked.Increment(ref _open) + 1;
            int seen;
            while (now > (seen = Volatile.Read(ref _mostOpen)) && Interlocked.CompareExchange(ref _mostOpen, now, seen) != seen)
            {
            }

            return new Counted(inner, () => Interlocked.Decrement(ref _open));
        }

        private sealed class Counted(IImageSource inner, Action closed) : IImageSource
        {
            private int _disposed;

            public string Name => inner.Name;

            public long Length => inner.Length;

            public long? AllocatedSize => inner.AllocatedSize;

            public ImageSourceIdentity Identity => inner.Identity;

            public ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
                inner.ReadAtAsync(offset, buffer, cancellationToken);

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _disposed, 1) == 0)
                {
                    inner.Dispose();
                    closed();
                }
            }
        }
    }
}
