using System;
using System.Buffers.Binary;
using System.Text;

namespace BackingChain.Interop;

/// <summary>What libvirt 9.0 reads from one image header: the backing name, the backing format (<see langword="null"/> when libvirt will probe it), and whether it saw encryption.</summary>
/// <param name="Backing">The backing name as stored, or <see langword="null"/> when libvirt sees none.</param>
/// <param name="BackingFormat">libvirt's name of the recorded backing format (<c>none</c>, which libvirt then refuses, included), or <see langword="null"/>: libvirt probes the backing image.</param>
/// <param name="Encrypted">Whether libvirt detected an encryption header (LUKS1 in a raw image, a qcow/qcow2 encryption method).</param>
/// <param name="NotRead">Why a backing name the image may hold was not read (the header parse gave up), or <see langword="null"/>.</param>
/// <param name="ProbeAccepted">
/// Whether libvirt accepts what it probes for the backing image even when that names a backing file of its own: a QED
/// overlay without the "do not probe" flag (libvirt's AUTO_SAFE), which its trust rule does not cover.
/// </param>
internal readonly record struct LibvirtHeaderFacts(string? Backing, string? BackingFormat, bool Encrypted, string? NotRead, bool ProbeAccepted = false);

/// <summary>
/// libvirt 9.0's reading of an image header (src/storage_file/storage_file_probe.c), modelled from its behaviour and
/// written here from those facts: libvirt reads at most the first <see cref="MaxHeader"/> bytes of a file, probes a
/// format from magic and version fields in its own order, and parses a backing name only within that window.
/// </summary>
/// <remarks>
/// Where libvirt differs from qemu: a qcow2 backing name (or a QED one) past the window is not seen at all; a
/// recorded backing format libvirt has no name for (<c>vhdx</c>, <c>luks</c>, <c>parallels</c>...) makes it probe
/// the backing image instead; a VMDK parent is always probed; a QED backing image is probed and accepted whatever it
/// names; qcow2 header extensions are stepped over without the
/// 8-byte padding the format defines; formats libvirt cannot detect (vhdx, LUKS2, a VMDK descriptor file, a fixed
/// VHD, bochs, cloop, dmg) are probed as raw.
/// </remarks>
internal static class LibvirtHeader
{
    /// <summary>The most libvirt reads of any image (<c>VIR_STORAGE_MAX_HEADER</c>).</summary>
    public const int MaxHeader = 0x8200;

    /// <summary>libvirt's format names (virStorageFileFormat), <c>none</c> first; <c>none</c> is not a usable format.</summary>
    private static readonly string[] Names = ["none", "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop", "cow", "qcow", "qcow2", "qed", "vmdk"];

    private const uint BackingFormatExtension = 0xE2792ACA;

    /// <summary>Whether libvirt has a format of this name (<c>none</c> excluded: libvirt refuses it where a format is needed).</summary>
    public static bool IsKnown(string? name) => name is not null && name != "none" && Array.IndexOf(Names, name) > 0;

    /// <summary>Whether libvirt reads a backing name from images of this format (those from <c>cow</c> on, VIR_STORAGE_FILE_BACKING).</summary>
    public static bool CanHaveBacking(string format) => format is "cow" or "qcow" or "qcow2" or "qed" or "vmdk";

    /// <summary>The qemu block driver libvirt's qemu driver opens a format with, or <see langword="null"/> where it refuses the format.</summary>
    public static string? QemuDriver(string format) => format switch
    {
        "iso" => "raw",
        "ploop" => "parallels",
        "vhd" => "vhdx",
        "raw" or "bochs" or "cloop" or "dmg" or "vpc" or "vdi" or "qcow" or "qcow2" or "qed" or "vmdk" => format,
        _ => null,
    };

    /// <summary>The format libvirt probes from a header (virStorageFileProbeFormatFromBuf): the first of its table whose magic and version match, else raw.</summary>
    public static string Probe(ReadOnlySpan<byte> header)
    {
        if (Matches(header, 32769, "CD001"u8))
        {
            return "iso";
        }

        if (Matches(header, 0, "conectix"u8) && VersionIs(header, 12, bigEndian: true, 0x10000))
        {
            return "vpc";
        }

        if (Matches(header, 64, [0x7f, 0x10, 0xda, 0xbe]) && VersionIs(header, 68, bigEndian: false, 0x00010001))
        {
            return "vdi";
        }

        if (Matches(header, 0, "WithouFreSpacExt"u8))
        {
            return "ploop";
        }

        if (Matches(header, 0, "OOOM"u8) && VersionIs(header, 4, bigEndian: true, 2))
        {
            return "cow";
        }

        // qcow and qcow2 share a three-byte magic; the version tells them apart.
        if (Matches(header, 0, "QFI"u8))
        {
            if (VersionIs(header, 4, bigEndian: true, 1))
            {
                return "qcow";
            }

            if (VersionIs(header, 4, bigEndian: true, 2, 3))
            {
                return "qcow2";
            }
        }

        if (Matches(header, 0, "QED"u8))
        {
            return "qed";
        }

        return Matches(header, 0, "KDMV"u8) && VersionIs(header, 4, bigEndian: false, 1, 2, 3) ? "vmdk" : "raw";
    }

    /// <summary>What libvirt reads from a header it takes to be <paramref name="format"/> (virStorageFileProbeGetMetadata).</summary>
    public static LibvirtHeaderFacts Read(string format, ReadOnlySpan<byte> header)
    {
        bool encrypted = format switch
        {
            "raw" => Matches(header, 0, [0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]) && VersionIs(header, 6, bigEndian: true, 1, size: 2),
            "qcow" => header.Length > 36 + 3 && BinaryPrimitives.ReadUInt32BigEndian(header[36..]) == 1,
            "qcow2" => header.Length > 32 + 3 && BinaryPrimitives.ReadUInt32BigEndian(header[32..]) is 1 or 2,
            _ => false,
        };

        // Only formats with a magic have metadata; the capacity field must lie within the header, or libvirt stops.
        (int sizeOffset, bool bigEndian, ulong multiplier) = format switch
        {
            "vpc" => (40, true, 1UL),
            "vdi" => (368, false, 1UL),
            "ploop" => (36, false, 512UL),
            "cow" => (1036, true, 1UL),
            "qcow" or "qcow2" => (24, true, 1UL),
            "qed" => (48, false, 1UL),
            "vmdk" => (12, false, 512UL),
            _ => (-1, false, 1UL),
        };

        var none = new LibvirtHeaderFacts(null, null, encrypted, null);
        if (sizeOffset < 0)
        {
            return none;
        }

        if (sizeOffset + 8 > header.Length)
        {
            return none with { NotRead = "the header is too short for libvirt to read its size" };
        }

        ulong capacity = bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(header[sizeOffset..]) : BinaryPrimitives.ReadUInt64LittleEndian(header[sizeOffset..]);
        if (capacity > ulong.MaxValue / multiplier)
        {
            return none with { NotRead = "libvirt stops at a size field that overflows" };
        }

        return format switch
        {
            "cow" => Cow(header, encrypted),
            "qcow" or "qcow2" => Qcow(header, encrypted),
            "qed" => Qed(header, encrypted),
            "vmdk" => Vmdk(header, encrypted),
            _ => none,
        };
    }

    private static LibvirtHeaderFacts Cow(ReadOnlySpan<byte> header, bool encrypted)
    {
        if (header.Length < 4 + 4 + 1024)
        {
            return new(null, null, encrypted, "the header is shorter than libvirt's cow header");
        }

        return header[8] == 0 ? new(null, null, encrypted, null) : new(CString(header.Slice(8, 1024)), null, encrypted, null);
    }

    private static LibvirtHeaderFacts Qcow(ReadOnlySpan<byte> header, bool encrypted)
    {
        if (header.Length < 20)
        {
            return new(null, null, encrypted, "the header is too short");
        }

        ulong offset = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
        if (offset > (ulong)header.Length)
        {
            return new(null, null, encrypted, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"its backing name lies at byte {offset}, past the first {MaxHeader} bytes libvirt reads"));
        }

        uint size = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
        if (offset == 0 || size == 0)
        {
            return new(null, null, encrypted, null);
        }

        if (size > 1023)
        {
            return new(null, null, encrypted, "its backing name is longer than the 1,023 bytes libvirt reads");
        }

        if (offset + size > (ulong)header.Length)
        {
            return new(null, null, encrypted, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"its backing name ends at byte {offset + size}, past the first {MaxHeader} bytes libvirt reads"));
        }

        string name = CString(header.Slice((int)offset, (int)size));

        // The name is kept even when the extensions cannot be read; the format is then whatever was parsed so far.
        (string? format, _) = Extensions(header, offset);
        return new(name, format, encrypted, null);
    }

    /// <summary>
    /// The backing format from the qcow2 header extensions as libvirt steps over them (qcow2GetExtensions): from the
    /// header's end up to the backing name, each extension's length added without the padding to 8 the format
    /// defines. A name libvirt does not know leaves the format to be probed.
    /// </summary>
    private static (string? Format, bool Failed) Extensions(ReadOnlySpan<byte> header, ulong end)
    {
        uint version = BinaryPrimitives.ReadUInt32BigEndian(header[4..]);
        if ((int)version < 2)
        {
            return (null, false);
        }

        ulong offset = version == 2 ? 72UL : (header.Length >= 104 ? BinaryPrimitives.ReadUInt32BigEndian(header[100..]) : ulong.MaxValue);
        ulong length = (ulong)header.Length;
        string? format = null;

        // libvirt's bounds are unsigned: an end below 8 wraps around and bounds nothing.
        while (offset < length - 8 && offset < unchecked(end - 8))
        {
            uint magic = BinaryPrimitives.ReadUInt32BigEndian(header[(int)offset..]);
            uint size = BinaryPrimitives.ReadUInt32BigEndian(header[((int)offset + 4)..]);
            offset += 8;
            if (offset + size > length)
            {
                break;
            }

            if (magic == BackingFormatExtension)
            {
                string name = CString(header.Slice((int)offset, (int)size));
                if (!IsKnown(name))
                {
                    // An unknown name leaves the format to be probed; "none" is a name libvirt has, for no format.
                    return (name == "none" ? "none" : null, true);
                }

                format = name;
            }
            else if (magic == 0)
            {
                return (format, false);
            }

            offset += size;
        }

        return (format, false);
    }

    private static LibvirtHeaderFacts Qed(ReadOnlySpan<byte> header, bool encrypted)
    {
        if (header.Length < 24)
        {
            return new(null, null, encrypted, "the header is too short");
        }

        ulong features = BinaryPrimitives.ReadUInt64LittleEndian(header[16..]);
        if ((features & 0x01) == 0)
        {
            return new(null, null, encrypted, null);
        }

        if (header.Length < 64)
        {
            return new(null, null, encrypted, "the header is too short");
        }

        ulong offset = BinaryPrimitives.ReadUInt32LittleEndian(header[56..]);
        ulong size = BinaryPrimitives.ReadUInt32LittleEndian(header[60..]);
        if (offset > (ulong)header.Length || (size != 0 && offset + size > (ulong)header.Length))
        {
            return new(null, null, encrypted, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"its backing name lies past the first {MaxHeader} bytes libvirt reads"));
        }

        if (size == 0)
        {
            return new(null, null, encrypted, null);
        }

        // Only the flag that says "do not probe" records a format, and it means raw.
        string name = CString(header.Slice((int)offset, (int)size));
        bool noProbe = (features & 0x04) != 0;
        return new(name, noProbe ? "raw" : null, encrypted, null, ProbeAccepted: !noProbe);
    }

    private static LibvirtHeaderFacts Vmdk(ReadOnlySpan<byte> header, bool encrypted)
    {
        if (header.Length <= 0x200)
        {
            return new(null, null, encrypted, "the header is too short");
        }

        // The descriptor is taken to start at 0x200 whatever the header says, and ends at its first NUL.
        ReadOnlySpan<byte> descriptor = header[0x200..];
        int nul = descriptor.IndexOf((byte)0);
        descriptor = nul >= 0 ? descriptor[..nul] : descriptor;
        ReadOnlySpan<byte> prefix = "parentFileNameHint=\""u8;
        int start = descriptor.IndexOf(prefix);
        if (start < 0)
        {
            return new(null, null, encrypted, null);
        }

        ReadOnlySpan<byte> rest = descriptor[(start + prefix.Length)..];
        int end = rest.IndexOf((byte)'"');
        if (end < 0)
        {
            return new(null, null, encrypted, "its parent name has no closing quote");
        }

        // libvirt probes a VMDK's parent, whatever qemu does.
        return end == 0 ? new(null, null, encrypted, null) : new(Encoding.UTF8.GetString(rest[..end]), null, encrypted, null);
    }

    private static string CString(ReadOnlySpan<byte> bytes)
    {
        int nul = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? bytes[..nul] : bytes);
    }

    private static bool Matches(ReadOnlySpan<byte> header, int offset, ReadOnlySpan<byte> magic) =>
        offset + magic.Length <= header.Length && header.Slice(offset, magic.Length).SequenceEqual(magic);

    private static bool VersionIs(ReadOnlySpan<byte> header, int offset, bool bigEndian, uint a, uint b = 0, uint c = 0, int size = 4)
    {
        if (offset + size > header.Length)
        {
            return false;
        }

        uint version = size == 2
            ? (bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(header[offset..]) : BinaryPrimitives.ReadUInt16LittleEndian(header[offset..]))
            : (bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(header[offset..]) : BinaryPrimitives.ReadUInt32LittleEndian(header[offset..]));
        return version == a || (b != 0 && version == b) || (c != 0 && version == c);
    }
}
