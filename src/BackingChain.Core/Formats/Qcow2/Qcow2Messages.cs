using System;
using System.Buffers.Binary;
using System.Text;

namespace BackingChain.Formats.Qcow2;

/// <summary>Words a qcow2 header error the way qemu words the matching open failure.</summary>
internal static class Qcow2Messages
{
    public static string Describe(HeaderError error, ReadOnlySpan<byte> data) => error switch
    {
        HeaderError.Truncated => "qcow2 header is truncated",
        HeaderError.BadMagic => "Image is not in qcow2 format",
        HeaderError.UnsupportedVersion => data.Length >= 8
            ? $"Unsupported qcow2 version {BinaryPrimitives.ReadUInt32BigEndian(data[Qcow2Layout.VersionOffset..])}"
            : "Unsupported qcow2 version",
        HeaderError.UnsupportedFeature => DescribeUnsupportedFeatures(data),
        HeaderError.InvalidSize => "Invalid qcow2 header: a size field is out of range (cluster size, header length, table size or backing file name)",
        HeaderError.InvalidOffset => "Invalid qcow2 header: a table or backing file offset is misaligned or out of range",
        HeaderError.InvalidExtension => "Invalid qcow2 header extension (too large, or with invalid contents)",
        HeaderError.Inconsistent => "Invalid qcow2 header: feature bits contradict the header fields",
        _ => "Invalid qcow2 header",
    };

    /// <summary>"Unsupported qcow2 feature(s): NAME, Unknown incompatible feature: 20", using the image's feature name table.</summary>
    private static string DescribeUnsupportedFeatures(ReadOnlySpan<byte> data)
    {
        if (data.Length < Qcow2Layout.V3MinimumHeaderLength)
        {
            return "Unsupported qcow2 feature(s) or encryption method";
        }

        ulong unknown = BinaryPrimitives.ReadUInt64BigEndian(data[Qcow2Layout.IncompatibleFeaturesOffset..])
            & ~(ulong)Qcow2Layout.KnownIncompatibleFeatures;
        if (unknown == 0)
        {
            return "Unsupported qcow2 encryption method or compression type";
        }

        var text = new StringBuilder("Unsupported qcow2 feature(s): ");
        bool first = true;
        for (int bit = 0; bit < 64; bit++)
        {
            if ((unknown & (1UL << bit)) == 0)
            {
                continue;
            }

            if (!first)
            {
                text.Append(", ");
            }

            first = false;
            string? name = FindFeatureName(data, bit);
            text.Append(name ?? $"Unknown incompatible feature: {1UL << bit:x}");
        }

        return text.ToString();
    }

    private static string? FindFeatureName(ReadOnlySpan<byte> data, int bit)
    {
        uint headerLength = BinaryPrimitives.ReadUInt32BigEndian(data[Qcow2Layout.HeaderLengthOffset..]);
        long offset = headerLength;
        while (offset + Qcow2Layout.ExtensionHeaderSize <= data.Length)
        {
            uint magic = BinaryPrimitives.ReadUInt32BigEndian(data[(int)offset..]);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data[((int)offset + 4)..]);
            offset += Qcow2Layout.ExtensionHeaderSize;
            if (magic == Qcow2Layout.ExtensionEnd || offset + length > data.Length)
            {
                return null;
            }

            if (magic == Qcow2Layout.ExtensionFeatureNameTable)
            {
                ReadOnlySpan<byte> table = data.Slice((int)offset, (int)length);
                for (int i = 0; i + Qcow2Layout.FeatureNameEntrySize <= table.Length; i += Qcow2Layout.FeatureNameEntrySize)
                {
                    if (table[i] == 0 && table[i + 1] == bit)
                    {
                        ReadOnlySpan<byte> name = table.Slice(i + 2, Qcow2Layout.FeatureNameLength);
                        int nul = name.IndexOf((byte)0);
                        return Encoding.UTF8.GetString(nul < 0 ? name : name[..nul]);
                    }
                }
            }

            offset += (length + 7) & ~7u;
        }

        return null;
    }
}
