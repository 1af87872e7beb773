using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using BackingChain;
using BackingChain.Sources;
using Microsoft.Extensions.Configuration;

namespace ProvisioningGate;

/// <summary>
/// Where accepted images live. Images are the only files in <see cref="Root"/>; what the service keeps about them
/// (the format each was accepted as, the files it names) and uploads still in flight live in <see cref="StateRoot"/>,
/// beside it, so that an upload can never name a sidecar or another tenant's half-written upload as its backing file
/// and have it trusted by location.
/// </summary>
public sealed class ImageStore
{
    /// <summary>The configuration key of the image root.</summary>
    public const string ImageRootKey = "ImageRoot";

    private const int MaxNameLength = 200;

    // Names being uploaded right now: a second upload under the same name is refused instead of racing the first.
    private readonly ConcurrentDictionary<string, byte> _reserved = new(StringComparer.Ordinal);

    /// <summary>Creates the store, and its folders if they are missing.</summary>
    /// <param name="root">The image root.</param>
    public ImageStore(string root)
    {
        Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        ArgumentException.ThrowIfNullOrEmpty(Path.GetFileName(Root), nameof(root)); // "/" has no sibling for the state folder
        StateRoot = Root + ".state";
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(IncomingRoot);
        Directory.CreateDirectory(MetadataRoot);
    }

    /// <summary>Gets the folder of the images (absolute).</summary>
    public string Root { get; }

    /// <summary>Gets the folder of the service's own files: sidecars and uploads in flight.</summary>
    public string StateRoot { get; }

    /// <summary>Gets the folder of uploads in flight (same file system as <see cref="Root"/>, so the final move is a rename).</summary>
    public string IncomingRoot => Path.Combine(StateRoot, "incoming");

    private string MetadataRoot => Path.Combine(StateRoot, "formats");

    /// <summary>The image root the configuration names, or <c>images</c> under the working directory.</summary>
    /// <param name="configuration">The configuration.</param>
    /// <returns>The absolute path.</returns>
    public static string RootFrom(IConfiguration configuration) =>
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(configuration[ImageRootKey] is { Length: > 0 } configured ? configured : Path.Combine(Directory.GetCurrentDirectory(), "images")));

    /// <summary>
    /// Whether a name may be used for an image: one path segment of letters, digits, dot, dash and underscore,
    /// starting with a letter or digit (so never <c>..</c>, a hidden file or anything with a separator), and it stays
    /// in the root once combined with it.
    /// </summary>
    /// <param name="name">The name from the request.</param>
    /// <returns>Whether it is acceptable.</returns>
    public bool IsValidName(string name)
    {
        if (name.Length is 0 or > MaxNameLength || !char.IsAsciiLetterOrDigit(name[0]))
        {
            return false;
        }

        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            {
                return false;
            }
        }

        // Belt and braces: whatever the rule above lets through must still land directly in the root.
        return Path.GetDirectoryName(Path.GetFullPath(Path.Combine(Root, name))) == Root;
    }

    /// <summary>The path of an image.</summary>
    /// <param name="name">A valid name.</param>
    /// <returns>The absolute path.</returns>
    public string PathOf(string name) => Path.Combine(Root, name);

    /// <summary>Whether an image of that name is stored (or its sidecar is: a half-deleted image still holds its name).</summary>
    /// <param name="name">A valid name.</param>
    /// <returns>Whether it exists.</returns>
    public bool Exists(string name) => File.Exists(PathOf(name)) || File.Exists(SidecarOf(name));

    /// <summary>Reserves a name for one upload.</summary>
    /// <param name="name">A valid name.</param>
    /// <returns>Whether the name was free and is now reserved.</returns>
    public bool TryReserve(string name) => !Exists(name) && _reserved.TryAdd(name, 0);

    /// <summary>Releases a reservation.</summary>
    /// <param name="name">The name.</param>
    public void Release(string name) => _reserved.TryRemove(name, out _);

    /// <summary>A fresh temporary file for an upload in flight.</summary>
    /// <returns>Its path; the file does not exist yet.</returns>
    public string NewIncomingPath() => Path.Combine(IncomingRoot, Guid.NewGuid().ToString("N") + ".part");

    /// <summary>
    /// Puts an accepted upload in place: first its sidecar, then the image (a rename), so that a stored image always
    /// has its recorded format. A crash between the two leaves only a sidecar, which holds the name but stores nothing.
    /// </summary>
    /// <param name="name">The image's name.</param>
    /// <param name="incoming">The accepted upload's temporary file.</param>
    /// <param name="record">What to remember about it.</param>
    public void Commit(string name, string incoming, StoredImage record)
    {
        string sidecar = SidecarOf(name);
        string temporary = sidecar + ".tmp";
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(record, StoredImageJson.Default.StoredImage));
        File.Move(temporary, sidecar, overwrite: false);
        try
        {
            File.Move(incoming, PathOf(name), overwrite: false);
        }
        catch
        {
            File.Delete(sidecar);
            throw;
        }
    }

    /// <summary>What was recorded when an image was accepted, or <see langword="null"/> when it is not stored.</summary>
    /// <param name="name">A valid name.</param>
    /// <returns>The record.</returns>
    public StoredImage? Find(string name)
    {
        if (!File.Exists(PathOf(name)))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(SidecarOf(name)), StoredImageJson.Default.StoredImage);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The stored images that name <paramref name="name"/> (as backing file, data file, extent or parent).</summary>
    /// <param name="name">A valid name.</param>
    /// <returns>Their names.</returns>
    public List<string> Dependents(string name)
    {
        // What the file is, not how its name is spelled: the gate trusts a name by its canonical path, so an overlay
        // may name this image through a symbolic link (or by the real folder of a root given through one). Device and
        // inode say it is the same file whatever the spelling.
        string target = PathOf(name);
        ImageSourceIdentity? identity = IdentityOf(target);
        var dependents = new List<string>();
        foreach (string sidecar in Directory.EnumerateFiles(MetadataRoot, "*.json"))
        {
            string other = Path.GetFileNameWithoutExtension(sidecar);
            StoredImage? record = other == name ? null : Find(other);
            if (record is not null && record.References.Exists(reference => reference == target || (identity is { } same && IdentityOf(reference) == same)))
            {
                dependents.Add(other);
            }
        }

        return dependents;
    }

    /// <summary>The identity of the file a stored name leads to (device and inode), or <see langword="null"/> when it cannot be opened.</summary>
    private static ImageSourceIdentity? IdentityOf(string path)
    {
        try
        {
            // The library's open: non-blocking, and refusing anything but a regular file or block device.
            using IImageSource source = ImageSources.OpenFile(path);
            return source.Identity;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>Removes an image, then its sidecar (the reverse of <see cref="Commit"/>).</summary>
    /// <param name="name">A valid name.</param>
    public void Delete(string name)
    {
        File.Delete(PathOf(name));
        File.Delete(SidecarOf(name));
    }

    private string SidecarOf(string name) => Path.Combine(MetadataRoot, name + ".json");
}
