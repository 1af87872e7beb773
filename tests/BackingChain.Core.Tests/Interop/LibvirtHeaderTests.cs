using System;
using System.Buffers.Binary;
using System.Text;
using BackingChain.Interop;
using CsCheck;

namespace BackingChain.Tests.Interop;

/// <summary>
/// The model of libvirt's header reading (<see cref="LibvirtHeader"/>) over hostile bytes: whatever the bytes, it
/// answers (a format, a backing name or none, why one was not read) and never throws; what it answers for real images
/// is held against libvirtd itself in <see cref="Libvirt.LibvirtLiveFormatTests"/> and <see cref="Libvirt.LibvirtLiveChainTests"/>.
/// </summary>
public sealed class LibvirtHeaderTests
{
    private static readonly string[] Formats = ["raw", "iso", "vpc", "vdi", "ploop", "cow", "qcow", "qcow2", "qed", "vmdk", "bochs", "vhd"];

    /// <summary>Starts of headers libvirt parses (magic, version, a backing offset and size), then noise: the fields that steer the parsers, at random.</summary>
    private static readonly Gen<byte[]> Headers = Gen.Select(Gen.Int[0, 4], Gen.Byte.Array[0, LibvirtHeader.MaxHeader], Gen.ULong, Gen.UInt, Gen.UInt, (kind, noise, offset, size, extra) =>
    {
        byte[] header = noise.Length < 128 ? [.. noise, .. new byte[128]] : noise;
        switch (kind)
        {
            case 0:
                "QFI\xfb"u8.CopyTo(header);
                BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), extra % 4);
                BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), offset % (ulong)(header.Length + 16));
                BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(16), size % 2048);
                BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(100), extra % (uint)(header.Length + 16));
                break;
            case 1:
                "QED\0"u8.CopyTo(header);
                BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(16), extra & 0x07);
                BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(56), (uint)(offset % (ulong)(header.Length + 16)));
                BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(60), size);
                break;
            case 2:
                "KDMV"u8.CopyTo(header);
                BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), extra % 4);
                if (header.Length > 0x220)
                {
                    Encoding.ASCII.GetBytes("parentFileNameHint=\"").CopyTo(header, 0x200);
                }

                break;
            case 3:
                "OOOM"u8.CopyTo(header);
                BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), 2);
                break;
        }

        return header;
    });

    [Fact]
    public void Any_header_gives_an_answer_and_never_throws()
    {
        Headers.Sample(header =>
        {
            string probed = LibvirtHeader.Probe(header);
            Assert.True(LibvirtHeader.IsKnown(probed), probed);
            foreach (string format in Formats)
            {
                LibvirtHeaderFacts facts = LibvirtHeader.Read(format, header);

                // A name libvirt reads is at most its bounds (1,023 bytes for qcow, 1,024 for cow, the header for the rest).
                Assert.True(facts.Backing is null || facts.Backing.Length <= LibvirtHeader.MaxHeader);
                Assert.True(facts.BackingFormat is null or "none" || LibvirtHeader.IsKnown(facts.BackingFormat), facts.BackingFormat);
            }
        }, iter: 3000);
    }

    [Theory]
    [InlineData("vhdx", null)]
    [InlineData("luks", null)]
    [InlineData("parallels", null)]
    [InlineData("none", "none")]
    [InlineData("ploop", "ploop")]
    [InlineData("raw", "raw")]
    public void A_recorded_format_libvirt_has_no_name_for_is_probed_and_none_is_kept(string recorded, string? expected)
    {
        // A version 2 qcow2 header, one backing-format extension, the end marker, then the backing name.
        byte[] header = new byte[512];
        "QFI\xfb"u8.CopyTo(header);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), 2);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(72), 0xE2792ACA);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(76), (uint)recorded.Length);
        Encoding.ASCII.GetBytes(recorded).CopyTo(header, 80);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), 200);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(16), 8);
        Encoding.ASCII.GetBytes("base.img").CopyTo(header, 200);

        LibvirtHeaderFacts facts = LibvirtHeader.Read("qcow2", header);

        Assert.Equal("base.img", facts.Backing);
        Assert.Equal(expected, facts.BackingFormat);
    }
}
