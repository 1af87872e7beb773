using BackingChain.Chain;
using BackingChain.Trust;

namespace BackingChain.Store;

/// <summary>
/// One file of a store, judged: its whole chain and the verdict, exactly as a check of that file alone gives them; or
/// something the scan could not see (<see cref="ScanProblem"/>), unsafe.
/// </summary>
public sealed class StoreImage
{
    internal StoreImage(string path, TrustReport report, ChainFinding? scanProblem = null)
    {
        Path = path;
        Report = report;
        ScanProblem = scanProblem;
        if (!report.Chain.Layers.IsEmpty)
        {
            foreach (ImageReference reference in report.Chain.Layers[0].References)
            {
                if (reference.Role == ReferenceRole.BackingFile)
                {
                    Backing = reference;
                    break;
                }
            }
        }
    }

    /// <summary>Gets the file's (or folder's) path: the store directory's absolute path joined with its place under it.</summary>
    public string Path { get; }

    /// <summary>Gets the verdict, holding the chain (<see cref="TrustReport.Chain"/>) top first.</summary>
    public TrustReport Report { get; }

    /// <summary>Gets whether the whole chain may be used.</summary>
    internal bool IsSafe => Report.IsSafe;

    /// <summary>Gets the file the image names as its backing image (or parent), or <see langword="null"/> when it names none or could not be read.</summary>
    public ImageReference? Backing { get; }

    /// <summary>
    /// Gets what kept the scan from judging what lies at <see cref="Path"/>, or <see langword="null"/> when it was
    /// judged: a folder it could not list, a file it could not open, a path longer than <c>PATH_MAX</c>, a symbolic
    /// link, or something else at the name than the listing saw (codes <see cref="FindingCodes.UnreadableDirectory"/>,
    /// <see cref="FindingCodes.UnreadableFile"/>, <see cref="FindingCodes.PathTooLong"/>,
    /// <see cref="FindingCodes.SymbolicLink"/>, <see cref="FindingCodes.ChangedDuringScan"/>). Such an entry has no
    /// layers and is never safe: a store is safe only when all of it was seen.
    /// </summary>
    public ChainFinding? ScanProblem { get; }

    /// <summary>
    /// Gets whether the chain is broken: a file it needs (the image itself, its backing image or one further down) was
    /// not there or could not be read when it was walked — moved, deleted, or made unreadable.
    /// </summary>
    public bool IsBroken => ScanProblem is null && Report.Chain.Ending == ChainEnding.Missing;

    /// <summary>Gets whether the image names a backing image without recording that image's format, so it would be probed.</summary>
    public bool HasUnrecordedBackingFormat => Backing is { RecordedFormat: null };

    /// <inheritdoc/>
    public override string ToString() => $"{Path}: {Report}";
}
