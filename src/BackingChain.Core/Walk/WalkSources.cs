using System;
using System.Collections.Generic;
using System.IO;
using BackingChain.Internal;
using BackingChain.Sources;


namespace BackingChain.Walk;

/// <summary>
/// The sources one walk opens past its top, and the descriptors behind them. The walk is done with each as soon as
/// its layer is read (<see cref="CloseOpened"/>): a local file the walk reopened over a bare descriptor then waits in
/// a small batch (<see cref="DeferredCloses"/>) to be closed with others, and its object becomes the spare that the
/// next backing file is opened into, so a walk of any depth uses two source objects and no handle objects; any other
/// source is disposed at once.
/// </summary>
internal sealed class WalkSources : IDisposable
{
    // Sources kept open for the layer being read (a reader's extents, a backing file from a provider), and the one
    // local backing file reopened over a bare descriptor, whose descriptor is batched (one per layer: only the
    // backing file is reopened, and CloseOpened runs before the next layer's is).
    private readonly List<IImageSource> _opened = [];
    private FileImageSource? _reopened;

    // The descriptors of layers already read, closed a batch at a time (most with one close_range each).
    private readonly DeferredCloses _closes = new();

    // The source of a layer already read and closed, to be filled in again for the next backing file
    // (FileImageSource.Reopen); the last reopened file CloseOpened gave up, until the walk is done with its layer.
    private FileImageSource? _spare;
    private FileImageSource? _closed;

    // The directory of the backing files the plain gate opens: a chain's layers usually lie in one directory, so
    // from the second one there on, an O_PATH descriptor of it is kept and each next layer is looked up by its
    // last component only (the kernel walks one component instead of the whole path). -1 when there is none;
    // NoDirectory when opening it failed for the directory of _previousBacking.
    private const int NoDirectory = -2;
    private int _directory = -1;
    private string? _previousBacking;
    private int _previousStart; // where _previousBacking's last component starts (UnixFile.LastComponentStart)

    /// <summary>Keeps a source open until the walk is done with the layer being read, or hands it back as it is.</summary>
    public IImageSource Keep(IImageSource source, bool keepOpen)
    {
        if (keepOpen)
        {
            _opened.Add(source);
        }

        return source;
    }

    /// <summary>
    /// Opens a backing file into the spare source (see <see cref="FileImageSource.Reopen"/>) and keeps it open until
    /// <see cref="CloseOpened"/>; with
    /// <paramref name="fromDirectory"/>, looked up from a descriptor of its directory when the previous such file lay
    /// in the same one (see <see cref="DirectoryOf"/>).
    /// </summary>
    public FileImageSource Reopen(string name, bool fromDirectory)
    {
        int directory = fromDirectory ? DirectoryOf(name) : -1;
        FileImageSource file;
        try
        {
            file = FileImageSource.Reopen(name, _spare, directory);
        }
        catch (IOException ex) when (ex.HResult is UnixErrors.EMFILE or UnixErrors.ENFILE && _closes.Count > 0)
        {
            // Out of descriptors while the walk still holds those of layers it has read: give them back, once.
            _closes.CloseAll();
            file = FileImageSource.Reopen(name, _spare, directory);
        }

        if (ReferenceEquals(file, _spare))
        {
            _spare = null;
        }

        if (_reopened is not null)
        {
            // Not reached by a walk (see _reopened); kept open with the others rather than lost.
            _opened.Add(_reopened);
        }

        _reopened = file;
        return file;
    }

    /// <summary>
    /// Done with what the walk opened for the layer just read (never the caller's top) before anything below is
    /// opened: a deep chain holds one source of its own at a time, plus at most <see cref="DeferredCloses.Capacity"/>
    /// bare descriptors of local layers already read, waiting to be closed.
    /// </summary>
    public void CloseOpened()
    {
        if (_reopened is { } file)
        {
            if (file.DetachDescriptor() is int fd and >= 0)
            {
                _closes.Add(fd);
            }
            else
            {
                file.Dispose();
            }

            _closed = file;
            _reopened = null;
        }

        for (int i = _opened.Count - 1; i >= 0; i--)
        {
            _opened[i].Dispose();
        }

        _opened.Clear();
    }

    /// <summary>
    /// The walk is done with the layer read from <paramref name="source"/> (the layer built from it holds none of
    /// it): a local file this walk reopened and closed becomes the spare for the next backing file.
    /// </summary>
    public void Recycle(IImageSource source)
    {
        if (_closed is not null && ReferenceEquals(source, _closed))
        {
            _spare = _closed;
        }

        _closed = null;
    }

    public void Dispose()
    {
        foreach (IImageSource source in _opened)
        {
            source.Dispose();
        }

        _reopened?.Dispose();

        ReleaseDirectory();
        _closes.CloseAll();
    }

    /// <summary>
    /// A descriptor of <paramref name="name"/>'s directory when the previous backing file the plain gate opened
    /// lay in the same one, spelled the same way (opened now, on the second such file); else -1, and the
    /// descriptor of another directory is given up. Used only where the trust rule does not look at where a file
    /// lies: then a lookup from the directory as it was found a moment ago, instead of by the whole name again,
    /// changes no decision.
    /// </summary>
    private int DirectoryOf(string name)
    {
        string? previous = _previousBacking;
        int previousStart = _previousStart;
        int start = UnixFile.LastComponentStart(name);
        _previousBacking = name;
        _previousStart = start;
        if (start == 0 || previous is null || previousStart != start
            || !name.AsSpan(0, start).SequenceEqual(previous.AsSpan(0, start)))
        {
            ReleaseDirectory();
            return -1;
        }

        if (_directory == -1)
        {
            int opened = UnixFile.TryOpenDirectory(name);
            _directory = opened >= 0 ? opened : NoDirectory;
        }

        return _directory >= 0 ? _directory : -1;
    }

    private void ReleaseDirectory()
    {
        if (_directory >= 0)
        {
            _closes.Add(_directory);
        }

        _directory = -1;
    }
}
