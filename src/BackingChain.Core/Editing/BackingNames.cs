using System;
using System.Collections.Generic;
using System.Text;
using BackingChain.Chain;

namespace BackingChain.Editing;

/// <summary>
/// Pure functions that compute backing names to store in an image: a name relative to the image's
/// directory, and the new name after a tree of images was moved. They read nothing from disk.
/// </summary>
/// <remarks>
/// qemu resolves a relative backing name by appending it to the directory part of the image's name and
/// lets the kernel resolve <c>..</c> — after symlinks. These functions work on the text of the paths
/// (<c>.</c> and <c>..</c> are folded lexically), so give them paths whose directories are not symlinks,
/// for example canonical ones; <see cref="BackingFileEditor.Relocate"/> does that.
/// </remarks>
internal static class BackingNames
{
    /// <summary>Computes the name that an image at <paramref name="imagePath"/> must store so that qemu finds <paramref name="backingPath"/>: relative to the image's directory.</summary>
    /// <param name="imagePath">The absolute POSIX path of the image that records the name.</param>
    /// <param name="backingPath">The absolute POSIX path of its backing image.</param>
    /// <returns>A relative name such as <c>base.raw</c> or <c>../base/base.raw</c>.</returns>
    /// <exception cref="ArgumentException">A path is empty or not absolute.</exception>
    public static string MakeRelative(string imagePath, string backingPath)
    {
        List<string> image = Segments(imagePath, nameof(imagePath));
        List<string> backing = Segments(backingPath, nameof(backingPath));
        if (image.Count == 0)
        {
            throw new ArgumentException("The image path names the root directory.", nameof(imagePath));
        }

        image.RemoveAt(image.Count - 1); // the image's directory
        int common = 0;
        while (common < image.Count && common < backing.Count && string.Equals(image[common], backing[common], StringComparison.Ordinal))
        {
            common++;
        }

        var builder = new StringBuilder();
        for (int i = common; i < image.Count; i++)
        {
            builder.Append("../");
        }

        for (int i = common; i < backing.Count; i++)
        {
            builder.Append(backing[i]);
            if (i < backing.Count - 1)
            {
                builder.Append('/');
            }
        }

        return builder.Length == 0 ? "." : builder.ToString().TrimEnd('/');
    }

    /// <summary>
    /// Recomputes the backing name an image stores after everything under <paramref name="oldRoot"/> was
    /// moved to <paramref name="newRoot"/> (the image included, from <paramref name="oldImagePath"/> to <paramref name="newImagePath"/>).
    /// </summary>
    /// <param name="storedName">The backing name as stored in the image.</param>
    /// <param name="oldImagePath">The absolute path the image had when the name was valid.</param>
    /// <param name="newImagePath">The absolute path the image has now.</param>
    /// <param name="oldRoot">The absolute directory that was moved.</param>
    /// <param name="newRoot">The absolute directory it was moved to.</param>
    /// <returns>
    /// A name relative to the image's new directory when the backing image was moved along with it; the backing
    /// image's absolute path when only one of the two moved (so the name survives the next move of the tree);
    /// <paramref name="storedName"/> unchanged for protocol, <c>json:</c> and Windows names, which are not paths here.
    /// </returns>
    /// <exception cref="ArgumentNullException">An argument is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException">A path is empty or not absolute.</exception>
    public static string Relocate(string storedName, string oldImagePath, string newImagePath, string oldRoot, string newRoot)
    {
        ArgumentNullException.ThrowIfNull(storedName);
        ReferenceKind kind = QemuPaths.Classify(storedName);
        if (storedName.Length == 0 || kind is not (ReferenceKind.RelativePath or ReferenceKind.AbsolutePath))
        {
            return storedName;
        }

        List<string> oldImage = Segments(oldImagePath, nameof(oldImagePath));
        List<string> from = Segments(oldRoot, nameof(oldRoot));
        if (oldImage.Count == 0)
        {
            throw new ArgumentException("The image path names the root directory.", nameof(oldImagePath));
        }

        bool imageMoved = StartsWith(oldImage, from);
        List<string> oldBacking;
        if (kind == ReferenceKind.AbsolutePath)
        {
            oldBacking = Segments(storedName, nameof(storedName));
        }
        else
        {
            // qemu's path_combine: the image's directory, then the name.
            oldImage.RemoveAt(oldImage.Count - 1);
            oldBacking = Segments("/" + string.Join('/', oldImage) + "/" + storedName, nameof(storedName));
        }

        List<string> to = Segments(newRoot, nameof(newRoot));
        _ = Segments(newImagePath, nameof(newImagePath));
        if (!StartsWith(oldBacking, from))
        {
            // The backing image did not move: name it absolutely, unless the image did not move either (the name still holds).
            return kind == ReferenceKind.AbsolutePath || !imageMoved ? storedName : Join(oldBacking);
        }

        var moved = new List<string>(to);
        moved.AddRange(oldBacking.GetRange(from.Count, oldBacking.Count - from.Count));

        // A relative name only where both images moved together (they share the tree, and the next move of the
        // tree keeps the name valid); an image outside the tree names its moved backing image absolutely.
        return imageMoved ? MakeRelative(newImagePath, Join(moved)) : Join(moved);
    }

    /// <summary>
    /// The new name of a file named by an absolute path after <paramref name="oldRoot"/> was moved to
    /// <paramref name="newRoot"/>: absolute again when the file moved, else <paramref name="storedName"/>. For names qemu
    /// does not resolve against the image's directory (a qcow2 external data file is opened as named, from the working
    /// directory), so a relative one cannot be relocated and is kept.
    /// </summary>
    internal static string RelocateAbsolute(string storedName, string oldRoot, string newRoot)
    {
        if (QemuPaths.Classify(storedName) != ReferenceKind.AbsolutePath)
        {
            return storedName;
        }

        List<string> name = Segments(storedName, nameof(storedName));
        List<string> from = Segments(oldRoot, nameof(oldRoot));
        if (!StartsWith(name, from))
        {
            return storedName;
        }

        var moved = Segments(newRoot, nameof(newRoot));
        moved.AddRange(name.GetRange(from.Count, name.Count - from.Count));
        return Join(moved);
    }

    /// <summary>The segments of an absolute POSIX path with <c>.</c>, <c>..</c> and repeated slashes folded.</summary>
    private static List<string> Segments(string path, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(path, parameterName);
        if (path.Length == 0 || path[0] != '/')
        {
            throw new ArgumentException($"'{path}' is not an absolute path.", parameterName);
        }

        var segments = new List<string>();
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (segments.Count > 0)
                {
                    segments.RemoveAt(segments.Count - 1);
                }

                continue;
            }

            segments.Add(part);
        }

        return segments;
    }

    private static bool StartsWith(List<string> path, List<string> prefix)
    {
        if (prefix.Count > path.Count)
        {
            return false;
        }

        for (int i = 0; i < prefix.Count; i++)
        {
            if (!string.Equals(path[i], prefix[i], StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    private static string Join(List<string> segments) => "/" + string.Join('/', segments);
}
