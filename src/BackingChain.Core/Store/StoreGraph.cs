using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using BackingChain.Chain;
using BackingChain.Sources;

namespace BackingChain.Store;

/// <summary>
/// A whole store as a graph: every image with its chain and verdict, who uses each base (reverse dependencies), and
/// the images that need attention. Images are linked by file identity (device and inode), so a base named by
/// different paths (relative, absolute, through a symlink) is one node. Immutable.
/// </summary>
public sealed class StoreGraph
{
    private readonly Dictionary<StoreImage, ImmutableArray<StoreImage>> _direct;
    private readonly Dictionary<StoreImage, ImmutableArray<StoreImage>> _all;

    internal StoreGraph(string directory, IEnumerable<StoreImage> images)
    {
        Directory = directory;
        var sorted = new List<StoreImage>(images);
        sorted.Sort(static (a, b) => string.CompareOrdinal(a.Path, b.Path));
        Images = [.. sorted];

        // Each file of the store by what it is, not what it is called: the first name wins for hard links.
        var byIdentity = new Dictionary<ImageSourceIdentity, StoreImage>();
        foreach (StoreImage image in Images)
        {
            if (!image.Report.Chain.Layers.IsEmpty)
            {
                byIdentity.TryAdd(image.Report.Chain.Layers[0].Identity, image);
            }
        }

        var direct = new Dictionary<StoreImage, List<StoreImage>>(ReferenceEqualityComparer.Instance);
        var all = new Dictionary<StoreImage, List<StoreImage>>(ReferenceEqualityComparer.Instance);
        foreach (StoreImage image in Images)
        {
            ImmutableArray<ChainLayer> layers = image.Report.Chain.Layers;
            for (int i = 1; i < layers.Length; i++)
            {
                if (byIdentity.TryGetValue(layers[i].Identity, out StoreImage? used) && !ReferenceEquals(used, image))
                {
                    Add(all, used, image);
                    if (i == 1)
                    {
                        Add(direct, used, image);
                    }
                }
            }
        }

        _direct = Freeze(direct);
        _all = Freeze(all);

        var broken = ImmutableArray.CreateBuilder<StoreImage>();
        var orphans = ImmutableArray.CreateBuilder<StoreImage>();
        var @unsafe = ImmutableArray.CreateBuilder<StoreImage>();
        var unrecorded = ImmutableArray.CreateBuilder<StoreImage>();
        foreach (StoreImage image in Images)
        {
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

    /// <summary>Gets the images whose chain the policy does not let be used.</summary>
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
        return (transitive ? _all : _direct).TryGetValue(image, out ImmutableArray<StoreImage> users) ? users : [];
    }

    private static void Add(Dictionary<StoreImage, List<StoreImage>> map, StoreImage used, StoreImage user)
    {
        if (!map.TryGetValue(used, out List<StoreImage>? users))
        {
            users = [];
            map.Add(used, users);
        }

        // A loop can pass through one base more than once; each user is listed once.
        if (users.Count == 0 || !ReferenceEquals(users[^1], user))
        {
            users.Add(user);
        }
    }

    private static Dictionary<StoreImage, ImmutableArray<StoreImage>> Freeze(Dictionary<StoreImage, List<StoreImage>> map)
    {
        var frozen = new Dictionary<StoreImage, ImmutableArray<StoreImage>>(map.Count, ReferenceEqualityComparer.Instance);
        foreach ((StoreImage used, List<StoreImage> users) in map)
        {
            frozen.Add(used, [.. users]);
        }

        return frozen;
    }
}
