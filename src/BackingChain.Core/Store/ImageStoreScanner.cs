using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Enumeration;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Trust;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackingChain.Store;

/// <summary>
/// Judges every image of a directory tree (a store) once, with the resolver's walk and the one trust judge, and sees
/// the store as a graph. Each image's verdict is the one a check of that file alone under the same policy gives; what
/// the scan adds is sharing: a layer many chains pass through is read once, and several images are walked at once.
/// </summary>
/// <remarks>
/// <para>Every regular file under the directory is an image: its format is probed, as when a single file is checked
/// without a declared format. Symbolic links (to files or directories) are not followed while listing the store, so
/// the scan never leaves it on its own; a link's target is scanned when it lies in the store, and a chain still
/// follows the names its images record, through the trust gate.</para>
/// <para>A store may change while it is scanned. A file removed, replaced or made unreadable between being listed and
/// being walked is a chain that ends missing, with a finding; a layer is answered from an earlier read only while the
/// file's identity, change time and length are unchanged. Nothing throws for one file's trouble; a directory that
/// cannot be listed is logged and skipped.</para>
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
        _resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = _options.Policy, MaxDepth = _options.MaxDepth });
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
        try
        {
            var parallel = new ParallelOptions { MaxDegreeOfParallelism = _options.MaxParallelism, CancellationToken = cancellationToken };
            await Parallel.ForEachAsync(ListFiles(root), parallel, async (path, token) =>
            {
                ImageChain chain = await _resolver.ResolveAsync(path, null, memo, token).ConfigureAwait(false);
                await writer.WriteAsync(new StoreImage(path, TrustJudge.Judge(chain)), token).ConfigureAwait(false);
            }).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Cancellation included: the reader sees it where it reads.
            failure = ex;
        }

        writer.TryComplete(failure);
    }

    /// <summary>
    /// The store's files, depth first, one directory listed at a time. Symbolic links are skipped without being
    /// followed; a directory that vanishes or cannot be listed while the scan runs is skipped and logged.
    /// </summary>
    private IEnumerable<string> ListFiles(string root)
    {
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = false,
            IgnoreInaccessible = false,
            AttributesToSkip = FileAttributes.ReparsePoint,
            ReturnSpecialDirectories = false,
        };
        var directories = new Stack<string>();
        directories.Push(root);
        var files = new List<string>();
        var subdirectories = new List<string>();
        while (directories.Count > 0)
        {
            string directory = directories.Pop();
            files.Clear();
            subdirectories.Clear();
            try
            {
                var entries = new FileSystemEnumerable<(string Path, bool IsDirectory)>(
                    directory, static (ref FileSystemEntry entry) => (entry.ToFullPath(), entry.IsDirectory), options);
                foreach ((string path, bool isDirectory) in entries)
                {
                    (isDirectory ? subdirectories : files).Add(path);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                StoreLog.DirectoryUnreadable(_logger, directory, ex.Message.ReplaceLineEndings(" "));
            }

            // Sorted, so that a store is listed in the same order every time.
            files.Sort(StringComparer.Ordinal);
            subdirectories.Sort(StringComparer.Ordinal);
            for (int i = subdirectories.Count - 1; i >= 0; i--)
            {
                directories.Push(subdirectories[i]);
            }

            foreach (string file in files)
            {
                yield return file;
            }
        }
    }
}
