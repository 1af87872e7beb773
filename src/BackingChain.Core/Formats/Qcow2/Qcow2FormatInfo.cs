using System.Collections.Immutable;
using System.Text.Json;
using BackingChain.Formats.Luks;

namespace BackingChain.Formats.Qcow2;

/// <summary>What qemu reports for a qcow2 image under <c>format-specific</c> (<c>ImageInfoSpecificQCow2</c>).</summary>
public sealed class Qcow2FormatInfo : FormatSpecificInfo
{
    internal Qcow2FormatInfo()
    {
    }

    /// <inheritdoc/>
    public override string Kind => "qcow2";

    /// <summary>"0.10" for version 2, "1.1" for version 3.</summary>
    public string Compat { get; internal init; } = "";

    /// <summary>The refcount width in bits.</summary>
    public int RefcountBits { get; internal init; }

    /// <summary>The compression type.</summary>
    public Qcow2CompressionType CompressionType { get; internal init; }

    /// <summary>Whether lazy refcounts are on (v3 only; <see langword="null"/> for v2).</summary>
    public bool? LazyRefcounts { get; internal init; }

    /// <summary>Whether the corrupt bit is set (v3 only).</summary>
    public bool? Corrupt { get; internal init; }

    /// <summary>Whether L2 entries are extended (v3 only).</summary>
    public bool? ExtendedL2 { get; internal init; }

    /// <summary>The external data file name as stored, when the extension is present (v3 only).</summary>
    public string? DataFile { get; internal init; }

    /// <summary>Whether the data file is raw; present exactly when the external data file bit is set.</summary>
    public bool? DataFileRaw { get; internal init; }

    /// <summary>"aes" or "luks" when encrypted, else <see langword="null"/>.</summary>
    public string? EncryptionFormat { get; internal init; }

    /// <summary>The LUKS header facts, for LUKS encryption whose header could be read.</summary>
    public LuksFormatInfo? Luks { get; internal init; }

    /// <summary>Persistent dirty bitmaps.</summary>
    public ImmutableArray<Qcow2Bitmap> Bitmaps { get; internal init; } = ImmutableArray<Qcow2Bitmap>.Empty;

    /// <summary>Internal snapshots.</summary>
    public ImmutableArray<Qcow2Snapshot> Snapshots { get; internal init; } = ImmutableArray<Qcow2Snapshot>.Empty;

    /// <inheritdoc/>
    internal override void WriteQemuData(Utf8JsonWriter writer)
    {
        writer.WriteString("compat", Compat);
        writer.WriteString("compression-type", CompressionType == Qcow2CompressionType.Zstd ? "zstd" : "zlib");
        if (LazyRefcounts is bool lazy)
        {
            writer.WriteBoolean("lazy-refcounts", lazy);
        }

        if (!Bitmaps.IsEmpty)
        {
            writer.WriteStartArray("bitmaps");
            foreach (Qcow2Bitmap bitmap in Bitmaps)
            {
                writer.WriteStartObject();
                writer.WriteStartArray("flags");
                if (bitmap.InUse)
                {
                    writer.WriteStringValue("in-use");
                }

                if (bitmap.Auto)
                {
                    writer.WriteStringValue("auto");
                }

                writer.WriteEndArray();
                writer.WriteString("name", bitmap.Name);
                writer.WriteNumber("granularity", bitmap.Granularity);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteNumber("refcount-bits", RefcountBits);
        if (EncryptionFormat is not null)
        {
            writer.WriteStartObject("encrypt");
            writer.WriteString("format", EncryptionFormat);
            Luks?.WriteQemuData(writer);
            writer.WriteEndObject();
        }

        if (DataFile is not null)
        {
            writer.WriteString("data-file", DataFile);
        }

        if (DataFileRaw is bool raw)
        {
            writer.WriteBoolean("data-file-raw", raw);
        }

        if (Corrupt is bool corrupt)
        {
            writer.WriteBoolean("corrupt", corrupt);
        }

        if (ExtendedL2 is bool extended)
        {
            writer.WriteBoolean("extended-l2", extended);
        }
    }
}
