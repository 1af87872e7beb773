using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Sources;
using BackingChain.Trust;
using BackingChain.Walk;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackingChain.Store;

/// <summary>
/// Judges every image of a directory tree (a store) once, with the resolver's walk and the one trust judge, and sees
/// the store as a graph. Each image's verdict is the one a check of that file alone under the same policy gives; what
/// the scan adds is sharing: a layer many chains pass through is read once, and several images are walked at once.
/// </summary>
/// <remarks>
/// <para>Every regular file (and block device) under the directory is an image: its format is the one the service
/// recorded for it (<see cref="ImageStoreScannerOptions.FormatCatalog"/>), as when a single file is checked with a
/// declared format, and is probed only where none is recorded. The scan never follows a symbolic link: on Linux each folder and
/// file is opened beneath a descriptor of the store's directory with no link allowed in any component, and must be
/// what the listing saw there (device and inode). A chain still follows the names its images record, through the
/// trust gate.</para>
/// <para>What the scan cannot see is an entry of its own, never safe, with a finding (<see cref="StoreImage.ScanProblem"/>):
/// a folder it may not list (<c>unreadable-directory</c>), a file it may not open (<c>unreadable-file</c>), a path
/// longer than <c>PATH_MAX</c> (<c>path-too-long</c>, and nothing under it is listed), a symbolic link
/// (<c>symbolic-link</c>), and a link, another file or a FIFO put at a listed name before it was opened
/// (<c>changed-during-scan</c>). A file removed between being listed and being walked is a chain that ends missing,
/// with a finding; a layer is answered from an earlier read only while the file's identity, change time and length
/// are unchanged. Nothing throws for one file's trouble.</para>
/// <para>A scanner holds only its settings and may be shared; each scan has its own memory of layers read.</para>
/// </remarks>
public sealed class ImageStoreScanner
{
    private const int Backlog = 256;

    private readonly ImageStoreScannerOptions _options;
    private readonly ImageChainResolver _resolver;
    private readonly ILogger _logger;

    /// <summary>Creates a scanner.</summary>
    /// <param name="options">Settings; the defaults of a new <see cref="ImageStoreScannerOptions"/> when <see langword="null"/>.</param>
    /// <param name="logger">Where to log; nothing is logged when <see langword="null"/>.</param>
    public ImageStoreScanner(ImageStoreScannerOptions? options = null, ILogger<ImageStoreScanner>? logger = null)
    {
        _options = options ?? ImageStoreScannerOptions.Default;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _resolver = _options.Walk.CreateResolver(logger);
    }

    /// <summary>Judges every image under <paramref name="directory"/>, yielding each as soon as it is judged (in no particular order).</summary>
    /// <param name="directory">The store's directory.</param>
    /// <param name="cancellationToken">Stops the scan; images already yielded stay valid.</param>
    /// <returns>The images, each once.</returns>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist (raised on the first move).</exception>
    public async IAsyncEnumerable<StoreImage> ScanAsync(string directory, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string root = Root(directory);
        StoreLog.ScanStarted(_logger, root, _options.MaxParallelism);

        // Walkers write, the caller reads; a bounded backlog keeps a slow reader from holding the whole store in memory.
        Channel<StoreImage> channel = Channel.CreateBounded<StoreImage>(new BoundedChannelOptions(Backlog) { SingleReader = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task walkers = WalkAllAsync(root, channel.Writer, stop.Token);
        try
        {
            await foreach (StoreImage image in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return image;

                // Images already judged wait in the backlog; a cancelled scan yields none of them.
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        finally
        {
            // The caller stopped early, was cancelled, or everything was read: no walker outlives the enumeration.
            await stop.CancelAsync().ConfigureAwait(false);
            await walkers.ConfigureAwait(false);
        }
    }

    /// <summary>Judges every image under <paramref name="directory"/> and returns the store as a graph.</summary>
    /// <param name="directory">The store's directory.</param>
    /// <param name="progress">Told how many images have been judged so far, after each one; may be <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the scan.</param>
    /// <returns>The graph.</returns>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="OperationCanceledException">The scan was cancelled.</exception>
    public async Task<StoreGraph> ScanGraphAsync(string directory, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        string root = Root(directory);
        var images = new List<StoreImage>();
        int @unsafe = 0;
        await foreach (StoreImage image in ScanAsync(root, cancellationToken).ConfigureAwait(false))
        {
            images.Add(image);
            @unsafe += image.IsSafe ? 0 : 1;
            progress?.Report(images.Count);
        }

        StoreLog.ScanFinished(_logger, root, images.Count, @unsafe);
        return new StoreGraph(root, images);
    }

    private static string Root(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"Could not find the store directory '{directory}'.");
        }

        return root;
    }

    private async Task WalkAllAsync(string root, ChannelWriter<StoreImage> writer, CancellationToken cancellationToken)
    {
        var memo = new LayerMemo();
        Exception? failure = null;
        using var listing = new StoreListing(root, _logger);
        try
        {
            var parallel = new ParallelOptions { MaxDegreeOfParallelism = _options.MaxParallelism, CancellationToken = cancellationToken };
            await Parallel.ForEachAsync(listing.List(), parallel, async (entry, token) =>
            {
                StoreImage image;
                try
                {
                    image = await JudgeAsync(listing, entry, memo, token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // One file's trouble is that file's finding, whatever it is: a scan never ends in an exception
                    // and never leaves an entry out, so the store cannot be called safe around it.
                    image = Unscanned(StoreEntry.Problem(entry.Path, entry.Relative, FindingCodes.UnreadableFile,
                        $"Could not judge '{entry.Path}': {ex.Message.ReplaceLineEndings(" ")}"));
                }

                await writer.WriteAsync(image, token).ConfigureAwait(false);
            }).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Cancellation included: the reader sees it where it reads.
            failure = ex;
        }

        writer.TryComplete(failure);
    }

    /// <summary>One entry of the listing judged: its chain walked from the descriptor the listing opened, or its finding.</summary>
    private async ValueTask<StoreImage> JudgeAsync(StoreListing listing, StoreEntry entry, LayerMemo memo, CancellationToken cancellationToken)
    {
        if (entry.Code is not null)
        {
            return Unscanned(entry);
        }

        if (entry.Special)
        {
            // A FIFO, socket or character device: the words a check of it alone gives, without opening it.
            string message = $"Could not open '{entry.Path}': {ImageChainResolver.DescribeOpenFailure(FileImageSource.NotAFile(entry.Path))}";
            return new StoreImage(entry.Path, TrustJudge.Judge(_resolver.Unopened(ChainEnding.Missing, FindingCodes.UnreachableImage, message)));
        }

        FileImageSource? source;
        try
        {
            source = listing.Open(entry, out StoreEntry problem, out bool vanished);
            if (source is null)
            {
                return vanished
                    ? new StoreImage(entry.Path, TrustJudge.Judge(_resolver.Unopened(ChainEnding.Missing, FindingCodes.UnreachableImage, problem.Message!)))
                    : Unscanned(problem);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            // Where files are opened by name (not Linux): the words a check of it alone gives.
            return new StoreImage(entry.Path, TrustJudge.Judge(_resolver.Unopened(
                ChainEnding.Missing, FindingCodes.UnreachableImage, $"Could not open '{entry.Path}': {ImageChainResolver.DescribeOpenFailure(ex)}")));
        }

        using (source)
        {
            // The format the service recorded, when it did: such a file is read as it, never probed.
            ImageFormat? recorded = _resolver.Catalogued(entry.Path);
            ImageChain chain = await _resolver.WalkAsync(source, recorded, null, topHasLocation: true, cancellationToken, memo: memo).ConfigureAwait(false);
            return new StoreImage(entry.Path, TrustJudge.Judge(chain));
        }
    }

    /// <summary>What the scan could not see, as an image with no layers and the one finding that says why: never safe.</summary>
    private StoreImage Unscanned(StoreEntry entry)
    {
        ImageChain chain = _resolver.Unopened(ChainEnding.Missing, entry.Code!, entry.Message!);
        return new StoreImage(entry.Path, TrustJudge.Judge(chain), chain.Findings[0]);
    }
}
