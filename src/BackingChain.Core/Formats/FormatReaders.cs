using System.Collections.Immutable;
using BackingChain.Formats.Qcow;
using BackingChain.Formats.Qcow2;
using BackingChain.Formats.Qed;
using BackingChain.Formats.Raw;
using BackingChain.Formats.Vmdk;

namespace BackingChain.Formats;

/// <summary>
/// Every format reader, in qemu 7.2's driver-list order (probe ties go to the earlier one). Raw comes last:
/// it always scores 1, the fallback.
/// </summary>
internal static class FormatReaders
{
    public static ImmutableArray<IImageFormatReader> All { get; } =
    [
        Qcow2FormatReader.Instance,
        QcowFormatReader.Instance,
        QedFormatReader.Instance,
        VmdkFormatReader.Instance,
        RawFormatReader.Instance,
    ];

    public static IImageFormatReader? Get(ImageFormat format)
    {
        foreach (IImageFormatReader reader in All)
        {
            if (reader.Format == format)
            {
                return reader;
            }
        }

        return null;
    }
}
