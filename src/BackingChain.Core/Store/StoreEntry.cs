namespace BackingChain.Store;

/// <summary>
/// One thing a store listing found: a file to judge (with the identity it had when listed), a special file (FIFO,
/// socket, character device) judged without being opened, or something the scan could not see, with its finding.
/// </summary>
/// <param name="Path">The absolute path: the store's directory joined with <paramref name="Relative"/>.</param>
/// <param name="Relative">The path under the store's directory.</param>
/// <param name="Special">A FIFO, socket or character device: refused by its type, never opened.</param>
/// <param name="Device">The device the file was on when listed (0 where not known).</param>
/// <param name="Inode">The inode the file had when listed (0 where not known).</param>
/// <param name="Code">The finding code when the scan could not see it, else <see langword="null"/>.</param>
/// <param name="Message">The finding's words, with <paramref name="Code"/>.</param>
internal readonly record struct StoreEntry(string Path, string Relative, bool Special, ulong Device, ulong Inode, string? Code, string? Message)
{
    public static StoreEntry Problem(string path, string relative, string code, string message) => new(path, relative, false, 0, 0, code, message);
}
