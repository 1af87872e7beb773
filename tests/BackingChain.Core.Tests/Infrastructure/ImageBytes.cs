using System;
using System.Buffers.Binary;
using System.Text;

namespace BackingChain.Tests.Infrastructure;

/// <summary>Byte-level builders and patchers for images qemu-img cannot create (written from the specs, not from our parsers).</summary>
internal static class ImageBytes
{
    /// <summary>One's complement byte sum of a VHD footer/dynamic header with its checksum field zeroed (VHD spec).</summary>
    public static void FixVhdChecksum(Span<byte> structure, int checksumOffset)
    {
        BinaryPrimitives.WriteUInt32BigEndian(structure[checksumOffset..], 0);
        uint sum = 0;
        foreach (byte b in structure)
        {
            sum += b;
        }

        BinaryPrimitives.WriteUInt32BigEndian(structure[checksumOffset..], ~sum);
    }

    /// <summary>A Bochs growing image: 512-byte header, catalog at 512, version 2.</summary>
    public static byte[] Bochs(ulong diskSize, uint catalogEntries, uint extentSize, uint version = 0x00020000)
    {
        byte[] image = new byte[512 + (catalogEntries * 4)];
        Encoding.ASCII.GetBytes("Bochs Virtual HD Image").CopyTo(image, 0);
        Encoding.ASCII.GetBytes("Redolog").CopyTo(image, 32);
        Encoding.ASCII.GetBytes("Growing").CopyTo(image, 48);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(64), version);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(68), 512);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(72), catalogEntries);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(76), 512);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(80), extentSize);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(version == 0x00010000 ? 84 : 88), diskSize);
        for (int i = 0; i < catalogEntries; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(512 + (i * 4)), 0xFFFFFFFF);
        }

        return image;
    }

    /// <summary>A cloop V2.0 image: preamble, block size, block count, n+1 offsets (each block "compressed" to 16 bytes).</summary>
    public static byte[] Cloop(uint blockSize, uint blocks)
    {
        byte[] image = new byte[136 + ((blocks + 1) * 8) + (blocks * 16)];
        Encoding.ASCII.GetBytes("#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n").CopyTo(image, 0);
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(128), blockSize);
        BinaryPrimitives.WriteUInt32BigEndian(image.AsSpan(132), blocks);
        ulong data = 136 + ((blocks + 1) * 8UL);
        for (int i = 0; i <= blocks; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(136 + (i * 8)), data + ((ulong)i * 16));
        }

        return image;
    }

    /// <summary>A "mish" block with one zero-fill chunk of <paramref name="sectors"/> and a terminator (UDIF).</summary>
    public static byte[] Mish(ulong sectors)
    {
        byte[] mish = new byte[204 + (2 * 40)];
        BinaryPrimitives.WriteUInt32BigEndian(mish, 0x6D697368);
        BinaryPrimitives.WriteUInt32BigEndian(mish.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt64BigEndian(mish.AsSpan(0x10), sectors);
        BinaryPrimitives.WriteUInt32BigEndian(mish.AsSpan(200), 2);
        BinaryPrimitives.WriteUInt32BigEndian(mish.AsSpan(204), 0); // UDZE
        BinaryPrimitives.WriteUInt64BigEndian(mish.AsSpan(204 + 0x10), sectors);
        BinaryPrimitives.WriteUInt32BigEndian(mish.AsSpan(244), 0xFFFFFFFF); // UDLE
        return mish;
    }

    /// <summary>A DMG whose chunk table is in an XML property list (base64 &lt;data&gt;), then the 512-byte "koly" trailer.</summary>
    public static byte[] DmgWithPlist(ulong sectors)
    {
        string plist = "<?xml version=\"1.0\"?><plist><dict><key>blkx</key><array><dict><key>Data</key><data>\n"
            + Convert.ToBase64String(Mish(sectors)) + "\n</data></dict></array></dict></plist>\n";
        byte[] xml = Encoding.ASCII.GetBytes(plist);
        byte[] image = new byte[xml.Length + 512];
        xml.CopyTo(image, 0);
        Span<byte> koly = image.AsSpan(xml.Length);
        WriteKoly(koly, dataFork: 0, rsrcOffset: 0, rsrcLength: 0, xmlOffset: 0, xmlLength: (ulong)xml.Length, sectors);
        return image;
    }

    /// <summary>A DMG whose chunk table is in a resource fork (one resource), then the trailer.</summary>
    public static byte[] DmgWithResourceFork(ulong sectors)
    {
        byte[] mish = Mish(sectors);
        int forkLength = 256 + 4 + mish.Length;
        byte[] image = new byte[forkLength + 512];
        Span<byte> fork = image.AsSpan(0, forkLength);
        BinaryPrimitives.WriteUInt32BigEndian(fork, 256);                      // resource data offset
        BinaryPrimitives.WriteUInt32BigEndian(fork[8..], (uint)(4 + mish.Length)); // resource data length
        BinaryPrimitives.WriteUInt32BigEndian(fork[256..], (uint)mish.Length);
        mish.CopyTo(fork[260..]);
        WriteKoly(image.AsSpan(forkLength), 0, 0, (ulong)forkLength, 0, 0, sectors);
        return image;
    }

    private static void WriteKoly(Span<byte> koly, ulong dataFork, ulong rsrcOffset, ulong rsrcLength, ulong xmlOffset, ulong xmlLength, ulong sectors)
    {
        Encoding.ASCII.GetBytes("koly").CopyTo(koly);
        BinaryPrimitives.WriteUInt32BigEndian(koly[4..], 4);
        BinaryPrimitives.WriteUInt32BigEndian(koly[8..], 512);
        BinaryPrimitives.WriteUInt64BigEndian(koly[0x18..], dataFork);
        BinaryPrimitives.WriteUInt64BigEndian(koly[0x28..], rsrcOffset);
        BinaryPrimitives.WriteUInt64BigEndian(koly[0x30..], rsrcLength);
        BinaryPrimitives.WriteUInt64BigEndian(koly[0xD8..], xmlOffset);
        BinaryPrimitives.WriteUInt64BigEndian(koly[0xE0..], xmlLength);
        BinaryPrimitives.WriteUInt64BigEndian(koly[0x1EC..], sectors);
    }

    /// <summary>
    /// Turns a dynamic VHD made by qemu-img (footer copy at 0, dynamic header at 512, BAT at 1536) into a
    /// differencing disk: type 4 in both footers, the parent's id, UTF-16BE name, and locators whose data follows
    /// the BAT sector.
    /// </summary>
    public static byte[] VhdDifferencing(byte[] dynamicVhd, Guid parentId, string parentName, params (string Code, byte[] Data)[] locators)
    {
        const int Footer = 512, Dynamic = 512, BatEnd = 2048;
        int dataLength = 0;
        foreach ((_, byte[] data) in locators)
        {
            dataLength += (data.Length + 511) & ~511;
        }

        byte[] image = new byte[BatEnd + dataLength + Footer];
        dynamicVhd.AsSpan(0, BatEnd).CopyTo(image);
        Span<byte> dyn = image.AsSpan(Dynamic, 1024);
        parentId.TryWriteBytes(dyn[40..], bigEndian: true, out _);
        byte[] name = Encoding.BigEndianUnicode.GetBytes(parentName);
        name.CopyTo(dyn[64..]);
        int at = BatEnd;
        for (int i = 0; i < locators.Length; i++)
        {
            Span<byte> entry = dyn.Slice(576 + (i * 24), 24);
            Encoding.ASCII.GetBytes(locators[i].Code).CopyTo(entry);
            int space = (locators[i].Data.Length + 511) & ~511;
            BinaryPrimitives.WriteUInt32BigEndian(entry[4..], (uint)space);
            BinaryPrimitives.WriteUInt32BigEndian(entry[8..], (uint)locators[i].Data.Length);
            BinaryPrimitives.WriteUInt64BigEndian(entry[16..], (ulong)at);
            locators[i].Data.CopyTo(image, at);
            at += space;
        }

        FixVhdChecksum(dyn, 36);
        Span<byte> footer = image.AsSpan(0, Footer);
        BinaryPrimitives.WriteUInt32BigEndian(footer[60..], 4);
        FixVhdChecksum(footer, 64);
        footer.CopyTo(image.AsSpan(image.Length - Footer));
        return image;
    }

    /// <summary>
    /// Turns a dynamic VHDX made by qemu-img (metadata region at 3 MiB, items at +64 KiB) into a differencing
    /// disk: HasParent in the file parameters and a sixth, required metadata item, the parent locator
    /// ([MS-VHDX] 2.6.2.6), at +128 KiB. The metadata region has no checksum.
    /// </summary>
    public static byte[] VhdxDifferencing(byte[] dynamicVhdx, params (string Key, string Value)[] entries)
    {
        const int Metadata = 0x300000, ItemOffset = 0x20000;
        byte[] image = (byte[])dynamicVhdx.Clone();
        if (image.Length < Metadata + ItemOffset + 65536)
        {
            Array.Resize(ref image, Metadata + ItemOffset + 65536);
        }

        Span<byte> table = image.AsSpan(Metadata);
        int count = BinaryPrimitives.ReadUInt16LittleEndian(table[10..]);
        BinaryPrimitives.WriteUInt16LittleEndian(table[10..], (ushort)(count + 1));
        Span<byte> entry = table.Slice(32 + (count * 32), 32);
        new Guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").TryWriteBytes(entry);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[16..], ItemOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[24..], 4); // IsRequired

        // File parameters are the first item (qemu's layout): set HasParent.
        int parameters = (int)BinaryPrimitives.ReadUInt32LittleEndian(table[(32 + 16)..]);
        Span<byte> bits = image.AsSpan(Metadata + parameters + 4);
        BinaryPrimitives.WriteUInt32LittleEndian(bits, BinaryPrimitives.ReadUInt32LittleEndian(bits) | 2);

        Span<byte> item = image.AsSpan(Metadata + ItemOffset);
        new Guid("B04AEFB7-D19E-4A81-B789-25B8E9445913").TryWriteBytes(item);
        BinaryPrimitives.WriteUInt16LittleEndian(item[18..], (ushort)entries.Length);
        int data = 20 + (12 * entries.Length);
        for (int i = 0; i < entries.Length; i++)
        {
            byte[] key = Encoding.Unicode.GetBytes(entries[i].Key);
            byte[] value = Encoding.Unicode.GetBytes(entries[i].Value);
            Span<byte> kv = item.Slice(20 + (12 * i), 12);
            BinaryPrimitives.WriteUInt32LittleEndian(kv, (uint)data);
            key.CopyTo(item[data..]);
            data += key.Length;
            BinaryPrimitives.WriteUInt32LittleEndian(kv[4..], (uint)data);
            value.CopyTo(item[data..]);
            data += value.Length;
            BinaryPrimitives.WriteUInt16LittleEndian(kv[8..], (ushort)key.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(kv[10..], (ushort)value.Length);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(entry[20..], (uint)data);
        return image;
    }
}
