using System;
using System.Buffers;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Formats;
using BackingChain.Formats.Qcow2;

namespace BackingChain.Interop;

/// <summary>
/// Writes <c>qemu-img info --output=json [--backing-chain]</c> as qemu-img 7.2 does: the same field names,
/// the same optional fields present or absent, 4-space indentation.
/// </summary>
public static class QemuImgInfoJson
{
    /// <summary>Formats one layer as a qemu-img <c>ImageInfo</c> object.</summary>
    /// <param name="layer">The layer.</param>
    /// <returns>The JSON text.</returns>
    public static string ToJson(ChainLayer layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, JsonOutput.WriterOptions))
        {
            Write(writer, layer);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Formats a chain as qemu-img's <c>--backing-chain</c> array, top first.</summary>
    /// <param name="chain">The chain.</param>
    /// <returns>The JSON text.</returns>
    public static string ToJson(ImageChain chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, JsonOutput.WriterOptions))
        {
            Write(writer, chain);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Writes a chain as a JSON array of <c>ImageInfo</c> objects.</summary>
    internal static void Write(Utf8JsonWriter writer, ImageChain chain)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(chain);
        writer.WriteStartArray();
        foreach (ChainLayer layer in chain.Layers)
        {
            Write(writer, layer);
        }

        writer.WriteEndArray();
    }

    /// <summary>Writes one layer as an <c>ImageInfo</c> object.</summary>
    internal static void Write(Utf8JsonWriter writer, ChainLayer layer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(layer);
        writer.WriteStartObject();

        // qemu 7.2 prints a QDict, whose members come out in the order of its hash buckets (qobject/qdict.c,
        // tdb_hash % 512), not in the order of the QAPI schema; tools diffing the text see that order, so it is kept.
        ImageReference? backing = null;
        foreach (ImageReference reference in layer.References)
        {
            // qemu shows the backing file only of formats whose driver opens one (qcow2, qcow, qed, a VMDK parent);
            // it ignores VHD/VHDX parent locators.
            if (reference.Role == ReferenceRole.BackingFile && FormatReaders.Get(layer.Format) is { QemuOpensBacking: true })
            {
                backing = reference;
                break;
            }
        }

        if (backing?.RecordedFormat is not null)
        {
            writer.WriteString("backing-filename-format", backing.RecordedFormat);
        }

        if (layer.FormatSpecific is Qcow2FormatInfo { Snapshots.IsEmpty: false } qcow2)
        {
            writer.WriteStartArray("snapshots");
            foreach (Qcow2Snapshot snapshot in qcow2.Snapshots)
            {
                writer.WriteStartObject();
                if (snapshot.InstructionCount != -1)
                {
                    writer.WriteNumber("icount", snapshot.InstructionCount);
                }

                writer.WriteNumber("vm-clock-nsec", snapshot.VmClockNanoseconds % 1_000_000_000);
                writer.WriteString("name", snapshot.Name);
                writer.WriteNumber("date-sec", snapshot.DateSeconds);
                writer.WriteNumber("date-nsec", snapshot.DateNanoseconds);
                writer.WriteNumber("vm-clock-sec", snapshot.VmClockNanoseconds / 1_000_000_000);
                writer.WriteString("id", snapshot.Id);
                writer.WriteNumber("vm-state-size", snapshot.VmStateSize);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteNumber("virtual-size", layer.VirtualSize);
        writer.WriteString("filename", layer.FileName);
        if (layer.ClusterSize is int clusterSize)
        {
            writer.WriteNumber("cluster-size", clusterSize);
        }

        writer.WriteString("format", layer.Format.GetQemuName());
        if (layer.ActualSize is long actualSize)
        {
            writer.WriteNumber("actual-size", actualSize);
        }

        if (layer.FormatSpecific is { } specific)
        {
            writer.WriteStartObject("format-specific");
            writer.WriteString("type", specific.Kind);
            writer.WriteStartObject("data");
            specific.WriteQemuData(writer);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        if (backing?.FullName is not null)
        {
            writer.WriteString("full-backing-filename", backing.FullName);
        }

        if (layer.Encrypted)
        {
            writer.WriteBoolean("encrypted", true);
        }

        if (backing is not null)
        {
            writer.WriteString("backing-filename", backing.StoredName);
        }

        if (layer.DirtyFlag is bool dirty)
        {
            writer.WriteBoolean("dirty-flag", dirty);
        }

        writer.WriteEndObject();
    }

    /// <summary>Writes a chain's JSON to a stream, followed by a newline.</summary>
    /// <param name="stream">The stream.</param>
    /// <param name="chain">The chain.</param>
    /// <param name="backingChain">Whether to write the whole chain as an array (<c>--backing-chain</c>) or only the top object.</param>
    public static void Write(Stream stream, ImageChain chain, bool backingChain)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(chain);
        JsonOutput.Write(stream, chain, (writer, c) => WriteDocument(writer, c, backingChain));
    }

    /// <summary>
    /// Writes what <c>qemu-img info --output=json</c> prints (with <paramref name="backingChain"/>, what
    /// <c>--backing-chain</c> adds) and a newline, with asynchronous writes only (for an HTTP response body).
    /// </summary>
    /// <param name="stream">Where to write.</param>
    /// <param name="chain">The chain.</param>
    /// <param name="backingChain">Every layer as an array, or only the top image as one object.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the document is written and flushed.</returns>
    public static Task WriteAsync(Stream stream, ImageChain chain, bool backingChain, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(chain);
        return JsonOutput.WriteAsync(stream, chain, (writer, c) => WriteDocument(writer, c, backingChain), cancellationToken);
    }

    // The whole chain as an array (--backing-chain), or the top image's object.
    private static void WriteDocument(Utf8JsonWriter writer, ImageChain chain, bool backingChain)
    {
        if (backingChain)
        {
            Write(writer, chain);
        }
        else if (!chain.Layers.IsEmpty)
        {
            Write(writer, chain.Layers[0]);
        }
    }
}
