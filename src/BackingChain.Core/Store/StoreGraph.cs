using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using BackingChain.Chain;

namespace BackingChain.Store;

/// <summary>
/// A whole store as a graph: every image with its chain and verdict, who uses each base (reverse dependencies), and
/// the images that need attention. Images are linked by file identity (device and inode), so a base named by
/// different paths (relative, absolute, through a symlink) is one node. Immutable.
/// </summary>
public sealed class StoreGraph
{
    private readonly Dictionary<StoreImage, ImmutableArray<StoreImage>> _direct;

    internal StoreGraph(string directory, IEnumerable<StoreImage> images)
    {
        Directory = directory;
        var sorted = new List<StoreImage>(images);
        sorted.Sort(static (a, b) => string.CompareOrdinal(a.Path, b.Path));
        Images = [.. sorted];

        // Each file of the store by what it is (the first name wins for hard links), and by its path for backing
        // files the gate did not open (refused by the policy): the name an image records still says whom it uses.
        var byIdentity = new Dictionary<ImageSourceIdentity, StoreImage>();
        var byPath = new Dictionary<string, StoreImage>(StringComparer.Ordinal);
        foreach (StoreImage image in Images)
        {
            byPath.TryAdd(image.Path, image);
            if (!image.Report.Chain.Layers.IsEmpty)
            {
                byIdentity.TryAdd(image.Report.Chain.Layers[0].Identity, image);
            }
        }

        var direct = new Dictionary<StoreImage, List<StoreImage>>();
        foreach (StoreImage image in Images)
        {
            if (BaseOf(image, byIdentity, byPath) is { } used && !ReferenceEquals(used, image))
            {
                if (!direct.TryGetValue(used, out List<StoreImage>? users))
                {
                    users = [];
                    direct.Add(used, users);
                }

                users.Add(image);
            }
        }

        _direct = new Dictionary<StoreImage, ImmutableArray<StoreImage>>(direct.Count);
        foreach ((StoreImage used, List<StoreImage> users) in direct)
        {
            _direct.Add(used, [.. users]);
        }

        var broken = ImmutableArray.CreateBuilder<StoreImage>();
        var orphans = ImmutableArray.CreateBuilder<StoreImage>();
        var @unsafe = ImmutableArray.CreateBuilder<StoreImage>();
        var unrecorded = ImmutableArray.CreateBuilder<StoreImage>();
        var unscanned = ImmutableArray.CreateBuilder<StoreImage>();
        foreach (StoreImage image in Images)
        {
            if (image.ScanProblem is not null)
            {
                unscanned.Add(image);
            }

            if (image.IsBroken)
            {
                broken.Add(image);
            }

            if (!image.IsSafe)
            {
                @unsafe.Add(image);
            }

            if (image.HasUnrecordedBackingFormat)
            {
                unrecorded.Add(image);
            }

            if (!image.Report.Chain.Layers.IsEmpty && image.Backing is null && !_direct.ContainsKey(image))
            {
                orphans.Add(image);
            }
        }

        BrokenChains = broken.ToImmutable();
        Orphans = orphans.ToImmutable();
        Unsafe = @unsafe.ToImmutable();
        UnrecordedBackingFormat = unrecorded.ToImmutable();
        Unscanned = unscanned.ToImmutable();
    }

    /// <summary>Gets the store directory's absolute path.</summary>
    public string Directory { get; }

    /// <summary>Gets every image of the store, ordered by path (ordinal).</summary>
    public ImmutableArray<StoreImage> Images { get; }

    /// <summary>Gets the images whose chain is broken: something it needs was moved, deleted or unreadable (<see cref="StoreImage.IsBroken"/>).</summary>
    public ImmutableArray<StoreImage> BrokenChains { get; }

    /// <summary>
    /// Gets the images that name no backing image and that no image of the store uses as one: a base nobody uses any
    /// more, or a disk that stands alone.
    /// </summary>
    public ImmutableArray<StoreImage> Orphans { get; }

    /// <summary>
    /// Gets what the scan could not see (<see cref="StoreImage.ScanProblem"/>): folders it could not list, files it
    /// could not open, paths longer than <c>PATH_MAX</c>, symbolic links, names that changed after the listing. Each
    /// is also in <see cref="Unsafe"/>: a store is safe only when all of it was seen.
    /// </summary>
    public ImmutableArray<StoreImage> Unscanned { get; }

    /// <summary>Gets the images whose chain the policy does not let be used, and everything the scan could not see (<see cref="Unscanned"/>).</summary>
    public ImmutableArray<StoreImage> Unsafe { get; }

    /// <summary>Gets the images that name a backing image without recording its format (<see cref="StoreImage.HasUnrecordedBackingFormat"/>).</summary>
    public ImmutableArray<StoreImage> UnrecordedBackingFormat { get; }

    /// <summary>Gets the images of the store that use <paramref name="image"/>: "who uses this base?".</summary>
    /// <param name="image">An image of this graph.</param>
    /// <param name="transitive">
    /// <see langword="false"/> for the images naming it as their backing image; <see langword="true"/> for every image
    /// whose chain passes through it, at any depth (what breaks if it is deleted).
    /// </param>
    /// <returns>The dependents, ordered by path; empty when nothing in the store uses it.</returns>
    public ImmutableArray<StoreImage> GetDependents(StoreImage image, bool transitive = false)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (!_direct.TryGetValue(image, out ImmutableArray<StoreImage> users) || !transitive)
        {
            return users.IsDefault ? [] : users;
        }

        // Users of users, each once; a loop among the store's images ends where it meets an image already seen.
        var seen = new HashSet<StoreImage> { image };
        var found = new List<StoreImage>();
        var pending = new Queue<StoreImage>(users);
        while (pending.TryDequeue(out StoreImage? user))
        {
            if (seen.Add(user))
            {
                found.Add(user);
                if (_direct.TryGetValue(user, out ImmutableArray<StoreImage> further))
                {
                    foreach (StoreImage next in further)
                    {
                        pending.Enqueue(next);
                    }
                }
            }
        }

        found.Sort(static (a, b) => string.CompareOrdinal(a.Path, b.Path));
        return [.. found];
    }

    /// <summary>The store image an image's backing file is: the file the walk opened, else the file its name resolves to.</summary>
    private static StoreImage? BaseOf(StoreImage image, Dictionary<ImageSourceIdentity, StoreImage> byIdentity, Dictionary<string, StoreImage> byPath)
    {
        ImmutableArray<ChainLayer> layers = image.Report.Chain.Layers;
        if (layers.Length > 1)
        {
            return byIdentity.GetValueOrDefault(layers[1].Identity);
        }

        if (image.Backing is { IsLocalPath: true, FullName: { } name })
        {
            try
            {
                return byPath.GetValueOrDefault(System.IO.Path.GetFullPath(name));
            }
            catch (ArgumentException)
            {
                return null;
            }
        }

        return null;
    }
}
