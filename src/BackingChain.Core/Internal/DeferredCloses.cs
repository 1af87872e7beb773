using System;

namespace BackingChain.Internal;

/// <summary>
/// Descriptors a walk has finished with, closed a batch at a time: where a batch holds numbers that follow one
/// another (as a walk's opens do, each taking the lowest free number), one <c>close_range(2)</c> closes the run,
/// so a deep walk makes about three system calls per layer (open, statx, pread) instead of four.
/// </summary>
/// <remarks>
/// Only descriptors this batch owns are ever added, and each stays open until the batch closes it, so no other
/// thread can hold a number inside a run: a run's <c>close_range</c> closes exactly the batch's descriptors. At most
/// <see cref="Capacity"/> are held at once. Not thread-safe: one walk owns one batch.
/// </remarks>
internal sealed class DeferredCloses
{
    /// <summary>How many finished descriptors a walk holds at most (well under any usual <c>RLIMIT_NOFILE</c>).</summary>
    public const int Capacity = 32;

    private readonly int[] _descriptors = new int[Capacity];
    private int _count;

    /// <summary>How many descriptors wait to be closed.</summary>
    public int Count => _count;

    /// <summary>Takes ownership of <paramref name="fd"/>; closes the batch when that fills it.</summary>
    public void Add(int fd)
    {
        _descriptors[_count++] = fd;
        if (_count == Capacity)
        {
            CloseAll();
        }
    }

    /// <summary>Closes every descriptor held: each run of consecutive numbers with one call, the others one by one.</summary>
    public void CloseAll()
    {
        Span<int> held = _descriptors.AsSpan(0, _count);
        _count = 0;
        held.Sort();
        int start = 0;
        while (start < held.Length)
        {
            int end = start;
            while (end + 1 < held.Length && held[end + 1] == held[end] + 1)
            {
                end++;
            }

            if (end == start || !UnixFile.CloseRange(held[start], held[end]))
            {
                for (int i = start; i <= end; i++)
                {
                    UnixFile.Close(held[i]);
                }
            }

            start = end + 1;
        }
    }
}
