namespace BackingChain.Formats.Qcow2;

/// <summary>A persistent dirty bitmap's directory entry, as qemu reports it.</summary>
/// <param name="Name">The bitmap's name.</param>
/// <param name="Granularity">Bytes covered by one bit.</param>
/// <param name="InUse">Flag bit 0: the bitmap was not saved cleanly.</param>
/// <param name="Auto">Flag bit 1: the bitmap tracks writes automatically.</param>
public sealed record Qcow2Bitmap(string Name, long Granularity, bool InUse, bool Auto);
