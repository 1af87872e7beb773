namespace BackingChain.Formats.Qcow2;

/// <summary>An internal snapshot, as <c>qemu-img info</c> lists it.</summary>
public sealed class Qcow2Snapshot
{
    internal Qcow2Snapshot(string id, string name, long vmStateSize, uint dateSeconds, uint dateNanoseconds, ulong vmClockNanoseconds, long instructionCount)
    {
        Id = id;
        Name = name;
        VmStateSize = vmStateSize;
        DateSeconds = dateSeconds;
        DateNanoseconds = dateNanoseconds;
        VmClockNanoseconds = vmClockNanoseconds;
        InstructionCount = instructionCount;
    }

    /// <summary>The snapshot id string.</summary>
    public string Id { get; }

    /// <summary>The snapshot name.</summary>
    public string Name { get; }

    /// <summary>Size of the saved VM state.</summary>
    public long VmStateSize { get; }

    /// <summary>Creation time, seconds since the epoch.</summary>
    public uint DateSeconds { get; }

    /// <summary>Creation time, nanosecond part.</summary>
    public uint DateNanoseconds { get; }

    /// <summary>The guest clock at the snapshot, in nanoseconds.</summary>
    public ulong VmClockNanoseconds { get; }

    /// <summary>The icount, or -1 when not recorded.</summary>
    public long InstructionCount { get; }
}
