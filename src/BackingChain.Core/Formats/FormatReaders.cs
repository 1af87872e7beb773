using System;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
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
/// The format registry: every format reader, in qemu 7.2's driver-list order (probe ties go to the earlier one).
/// Raw comes last: it always scores 1, the fallback. Only formats whose signatures can coexist can tie; measured
/// with qemu-img 7.2.22 on polyglot files: parallels and qed win over vdi (signature at 0x40), vdi wins over qcow2,
/// qcow, vmdk, vpc, vhdx and luks; dmg (file name) wins over cloop (both score 2).
/// </summary>
/// <remarks>
/// Adding a format is a folder with its header parser and reader, an <see cref="ImageFormat"/> value, and one line
/// here. Names, detection signatures, libvirt's and qemu-img's per-format answers are all asked of the readers.
/// </remarks>
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

    /// <summary>The readers indexed by format value, so a name or a trait is found without a search.</summary>
    private static readonly IImageFormatReader?[] ByFormat = Index(All);

    /// <summary>Gets the reader of <paramref name="format"/>; <see langword="null"/> for <see cref="ImageFormat.Unknown"/> or an undefined value.</summary>
    public static IImageFormatReader? Get(ImageFormat format) =>
        (uint)format < (uint)ByFormat.Length ? ByFormat[(int)format] : null;

    /// <summary>Finds the reader whose qemu driver name is exactly <paramref name="qemuName"/> (case-sensitive, as qemu's <c>-f</c>).</summary>
    public static IImageFormatReader? Find(ReadOnlySpan<char> qemuName)
    {
        foreach (IImageFormatReader reader in All)
        {
            if (qemuName.SequenceEqual(reader.QemuName))
            {
                return reader;
            }
        }

        return null;
    }

    /// <summary>
    /// Publishes every registered reader's qemu name to <see cref="ImageFormatNames"/> (the root namespace, below this
    /// one) when the assembly loads, before any code of it runs, so that <c>GetQemuName</c> and <c>TryParse</c> see
    /// the registry without the root naming it.
    /// </summary>
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries", Justification = "It only fills the library's own name table from its own registry; it runs no user code and touches nothing outside the assembly.")]
    internal static void PublishNames()
    {
        var names = new string?[ByFormat.Length];
        for (int i = 0; i < names.Length; i++)
        {
            names[i] = ByFormat[i]?.QemuName;
        }

        ImageFormatNames.Publish(names);
    }

    private static IImageFormatReader?[] Index(ImmutableArray<IImageFormatReader> readers)
    {
        int max = 0;
        foreach (IImageFormatReader reader in readers)
        {
            max = Math.Max(max, (int)reader.Format);
        }

        var index = new IImageFormatReader?[max + 1];
        foreach (IImageFormatReader reader in readers)
        {
            if (index[(int)reader.Format] is not null)
            {
                throw new InvalidOperationException($"Two readers registered for {reader.Format}.");
            }

            index[(int)reader.Format] = reader;
        }

        return index;
    }
}
