using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;

namespace BackingChain.Tests.Editing;

/// <summary>Byte patches that make images qemu-img 7.2 no longer makes: a backing file without a recorded format.</summary>
internal static class ImagePatches
{
    private const uint Qcow2Magic = 0x514649FB;
    private const uint QedMagic = 0x00444551;
    private const uint BackingFormatExtension = 0xE2792ACA;

    /// <summary>
    /// Removes the recorded backing format: for qcow2 the format extension is cut out of the extension area (the
    /// records after it move up, the name follows the end marker as qemu lays it out); for QED the no-probe bit
    /// (feature bit 2, "the backing file is raw") is cleared.
    /// </summary>
    public static void DropBackingFormat(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) == QedMagic)
        {
            Assert.Equal(5, bytes[16] & 5);
            bytes[16] &= unchecked((byte)~4);
            File.WriteAllBytes(path, bytes);
            return;
        }

        Assert.Equal(Qcow2Magic, BinaryPrimitives.ReadUInt32BigEndian(bytes));
        int clusterSize = 1 << (int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(20));
        int headerLength = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(4)) >= 3 ? (int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(100)) : 72;
        int nameOffset = (int)BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(8));
        int nameSize = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(16));
        byte[] name = bytes.AsSpan(nameOffset, nameSize).ToArray();

        var area = new List<byte>();
        bool dropped = false;
        for (int position = headerLength; ;)
        {
            uint magic = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(position));
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(position + 4));
            int record = 8 + ((length + 7) & ~7);
            if (magic == 0)
            {
                area.AddRange(new byte[8]);
                break;
            }

            if (magic == BackingFormatExtension)
            {
                dropped = true;
            }
            else
            {
                area.AddRange(bytes.AsSpan(position, record).ToArray());
            }

            position += record;
        }

        Assert.True(dropped, "the image records no backing format");
        Array.Clear(bytes, headerLength, clusterSize - headerLength);
        area.CopyTo(bytes, headerLength);
        name.CopyTo(bytes, headerLength + area.Count);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), (ulong)(headerLength + area.Count));
        File.WriteAllBytes(path, bytes);
    }
}
