namespace BackingChain.Formats.Qcow2;

/// <summary>An internal snapshot, as <c>qemu-img info</c> lists it.</summary>
/// <param name="Id">The snapshot id string.</param>
/// <param name="Name">The snapshot name.</param>
/// <param name="VmStateSize">Size of the saved VM state.</param>
/// <param name="DateSeconds">Creation time, seconds since the epoch.</param>
/// <param name="DateNanoseconds">Creation time, nanosecond part.</param>
/// <param name="VmClockNanoseconds">The guest clock at the snapshot, in nanoseconds.</param>
/// <param name="InstructionCount">The icount, or -1 when not recorded.</param>
public sealed record Qcow2Snapshot(string Id, string Name, long VmStateSize, uint DateSeconds, uint DateNanoseconds, ulong VmClockNanoseconds, long InstructionCount);
