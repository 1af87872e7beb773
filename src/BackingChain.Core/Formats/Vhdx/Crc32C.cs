using System;

namespace BackingChain.Formats.Vhdx;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as VHDX checksums its headers and region tables.
/// Table-driven; the table is built once, so checksumming allocates nothing.
/// </summary>
internal static class Crc32C
{
    private const uint Polynomial = 0x82F63B78;

    private static readonly uint[] Table = BuildTable();

    /// <summary>The CRC of <paramref name="data"/> with the 4 bytes at <paramref name="checksumOffset"/> counted as zero.</summary>
    public static uint ComputeSkipping(ReadOnlySpan<byte> data, int checksumOffset)
    {
        uint crc = 0xFFFFFFFF;
        for (int i = 0; i < data.Length; i++)
        {
            byte value = i >= checksumOffset && i < checksumOffset + sizeof(uint) ? (byte)0 : data[i];
            crc = Table[(crc ^ value) & 0xFF] ^ (crc >> 8);
        }

        return ~crc;
    }

    /// <summary>The CRC of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ComputeSkipping(data, -sizeof(uint));

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < table.Length; i++)
        {
            uint crc = i;
            for (int bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ Polynomial : crc >> 1;
            }

            table[i] = crc;
        }

        return table;
    }
}
