using System.Collections.Immutable;
using System.Text.Json;

namespace BackingChain.Formats.Vmdk;

/// <summary>What qemu reports for a VMDK image under <c>format-specific</c> (<c>ImageInfoSpecificVmdk</c>).</summary>
public sealed class VmdkFormatInfo : FormatSpecificInfo
{
    internal VmdkFormatInfo()
    {
    }

    /// <inheritdoc/>
    public override string Kind => "vmdk";

    /// <summary>The create type: the descriptor's, or "monolithicSparse"/"streamOptimized" for a sparse file ("" when qemu has none).</summary>
    public string CreateType { get; internal init; } = "";

    /// <summary>The content ID.</summary>
    public uint Cid { get; internal init; }

    /// <summary>The parent's content ID (0xFFFFFFFF when there is no parent).</summary>
    public uint ParentCid { get; internal init; }

    /// <summary>The extents, in the order qemu opens them.</summary>
    public ImmutableArray<VmdkExtentInfo> Extents { get; internal init; } = ImmutableArray<VmdkExtentInfo>.Empty;

    /// <inheritdoc/>
    internal override void WriteQemuData(Utf8JsonWriter writer)
    {
        writer.WriteNumber("cid", Cid);
        writer.WriteNumber("parent-cid", ParentCid);
        writer.WriteString("create-type", CreateType);
        writer.WriteStartArray("extents");
        foreach (VmdkExtentInfo extent in Extents)
        {
            writer.WriteStartObject();
            if (extent.Compressed)
            {
                writer.WriteBoolean("compressed", true);
            }

            writer.WriteNumber("virtual-size", extent.VirtualSize);
            writer.WriteString("filename", extent.FileName);
            if (extent.ClusterSize is long clusterSize)
            {
                writer.WriteNumber("cluster-size", clusterSize);
            }

            writer.WriteString("format", extent.Format);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }
}
