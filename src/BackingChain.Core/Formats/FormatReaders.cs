using System.Collections.Immutable;
using BackingChain.Formats.Bochs;
using BackingChain.Formats.Cloop;
using BackingChain.Formats.Dmg;
using BackingChain.Formats.Luks;
using BackingChain.Formats.Parallels;
using BackingChain.Formats.Qcow;
using BackingChain.Formats.Qcow2;
using BackingChain.Formats.Qed;
using BackingChain.Formats.Raw;
using BackingChain.Formats.Vdi;
using BackingChain.Formats.Vhdx;
using BackingChain.Formats.Vmdk;
using BackingChain.Formats.Vpc;

namespace BackingChain.Formats;

/// <summary>
/// Every format reader, in qemu 7.2's driver-list order (probe ties go to the earlier one). Raw comes last:
/// it always scores 1, the fallback. Only formats whose signatures can coexist can tie; measured with qemu-img
/// 7.2.22 on polyglot files: parallels and qed win over vdi (signature at 0x40), vdi wins over qcow2, qcow, vmdk,
/// vpc, vhdx and luks; dmg (file name) wins over cloop (both score 2).
/// </summary>
internal static class FormatReaders
{
    public static ImmutableArray<IImageFormatReader> All { get; } =
    [
        ParallelsFormatReader.Instance,
        QedFormatReader.Instance,
        VdiFormatReader.Instance,
        Qcow2FormatReader.Instance,
        QcowFormatReader.Instance,
        VmdkFormatReader.Instance,
        VpcFormatReader.Instance,
        VhdxFormatReader.Instance,
        LuksFormatReader.Instance,
        BochsFormatReader.Instance,
        DmgFormatReader.Instance,
        CloopFormatReader.Instance,
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
