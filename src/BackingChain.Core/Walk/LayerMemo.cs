using System.Collections.Concurrent;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Detection;
using BackingChain.Formats;

namespace BackingChain.Walk;

/// <summary>
/// Layers already read, shared by the walks of one store scan, so a base used by many overlays is read once however
/// many chains pass through it. Only what is a pure function of the file's bytes and its name is kept (header facts
/// and detection); every walk still opens each file through the gate and makes its own decisions and findings.
/// </summary>
/// <remarks>
/// A layer is known by the file's identity (device and inode), its change time and length, the name it was opened by
/// (detection and some format facts depend on it) and the format it is read as. A file rewritten, truncated, renamed
/// over or re-permissioned moves its change time or identity, so it is read again rather than answered from memory.
/// Concurrent walks that reach the same layer wait for the first one's read instead of reading it again.
/// </remarks>
internal sealed class LayerMemo
{
    private readonly ConcurrentDictionary<Key, Task<Layer?>> _layers = new();
    private int _reads;

    /// <summary>How many layers were claimed for reading: the reads this memory saved others from making are the rest.</summary>
    public int Reads => Volatile.Read(ref _reads);

    /// <summary>Claims the reading of a layer, or returns the read another walk made or is making.</summary>
    /// <param name="key">The layer.</param>
    /// <param name="claim">Set when the caller must read the layer and then call <see cref="Complete"/>.</param>
    /// <returns>The read (null when it could not be shared: read it yourself), or null with a claim.</returns>
    public Task<Layer?>? Claim(Key key, out TaskCompletionSource<Layer?>? claim)
    {
        var mine = new TaskCompletionSource<Layer?>(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<Layer?> task = _layers.GetOrAdd(key, mine.Task);
        if (ReferenceEquals(task, mine.Task))
        {
            claim = mine;
            Interlocked.Increment(ref _reads);
            return null;
        }

        claim = null;
        return task;
    }

    /// <summary>Publishes a claimed read; <see langword="null"/> when the layer is not shareable (each walk reads it then).</summary>
    public static void Complete(TaskCompletionSource<Layer?> claim, Layer? layer) => claim.TrySetResult(layer);

    /// <summary>What identifies one read of one file.</summary>
    public readonly record struct Key(ImageSourceIdentity Identity, long ChangeStamp, long Length, string Name, ImageFormat? Format);

    /// <summary>A shared read: the facts the format reader found and what detection saw.</summary>
    public sealed record Layer(LayerFacts Facts, ImageFormat Used, ImageFormat Probed, ThoroughDetection? Detection);
}
