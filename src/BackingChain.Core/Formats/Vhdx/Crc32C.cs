using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace BackingChain.Formats.Vhdx;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as VHDX checksums its headers and region tables.
/// Uses the CPU's CRC-32C instruction (SSE4.2 on x64, the CRC32 extension on Arm64) 8 bytes at a time; the
/// table-driven loop is only the fallback for other CPUs. Allocates nothing.
/// </summary>
internal static class Crc32C
{
    private const uint Polynomial = 0x82F63B78;

    private static readonly uint[] Table = BuildTable();

    /// <summary>
    /// 3 × 1360 = 4080: a 4 KiB VHDX header block is one three-way round and a 16-byte tail. The short block
    /// picks up what is left of longer data (a 64 KiB region table) before the single-chain tail.
    /// </summary>
    private const int LongBlock = 1360;

    private const int ShortBlock = 256;

    private static readonly uint[] LongShift = BuildZeroShift(LongBlock);

    private static readonly uint[] ShortShift = BuildZeroShift(ShortBlock);

    /// <summary>The CRC of <paramref name="data"/> with the 4 bytes at <paramref name="checksumOffset"/> counted as zero.</summary>
    public static uint ComputeSkipping(ReadOnlySpan<byte> data, int checksumOffset)
    {
        // Three runs: the bytes before the field, the field's bytes that lie within the data (as zeros), the rest.
        int first = Math.Clamp(checksumOffset, 0, data.Length);
        int end = (int)Math.Clamp((long)checksumOffset + sizeof(uint), 0, data.Length);
        uint crc = Update(0xFFFFFFFF, data[..first]);
        for (int i = first; i < end; i++)
        {
            crc = UpdateByte(crc, 0);
        }

        return ~Update(crc, data[end..]);
    }

    /// <summary>The CRC of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFFFFFF, data);

    /// <summary>The table-driven CRC (the portable path), kept callable so tests can compare the two.</summary>
    internal static uint ComputeSkippingPortable(ReadOnlySpan<byte> data, int checksumOffset)
    {
        uint crc = 0xFFFFFFFF;
        for (int i = 0; i < data.Length; i++)
        {
            byte value = i >= checksumOffset && i < checksumOffset + sizeof(uint) ? (byte)0 : data[i];
            crc = UpdateByteTable(crc, value);
        }

        return ~crc;
    }

    /// <summary>Advances a raw (not inverted) CRC state over <paramref name="data"/>.</summary>
    private static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        int i = 0;
        if (Sse42.X64.IsSupported || Crc32.Arm64.IsSupported)
        {
            // The instruction has a latency of about 3 cycles but a throughput of 1 a cycle, so a single chain
            // of 8-byte steps is latency bound (about 430 ns for a 4 KiB header block). Three independent
            // chains over three adjacent blocks keep the unit busy; the three CRCs are then joined by
            // advancing the earlier ones over the length of a block (a linear map, see ZeroShift).
            while (data.Length - i >= 3 * LongBlock)
            {
                crc = ThreeWay(crc, data.Slice(i, 3 * LongBlock), LongBlock, LongShift);
                i += 3 * LongBlock;
            }

            while (data.Length - i >= 3 * ShortBlock)
            {
                crc = ThreeWay(crc, data.Slice(i, 3 * ShortBlock), ShortBlock, ShortShift);
                i += 3 * ShortBlock;
            }

            for (; data.Length - i >= sizeof(ulong); i += sizeof(ulong))
            {
                crc = Step(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
            }
        }

        for (; i < data.Length; i++)
        {
            crc = UpdateByte(crc, data[i]);
        }

        return crc;
    }

    private static uint ThreeWay(uint crc, ReadOnlySpan<byte> data, int block, uint[] shift)
    {
        uint crc0 = crc;
        uint crc1 = 0;
        uint crc2 = 0;

        // Unchecked reads: the caller passes exactly 3 × block bytes, and per-read bounds checks were a
        // measurable share of a loop this short.
        ref byte a = ref MemoryMarshal.GetReference(data[..(3 * block)]);
        ref byte b = ref Unsafe.Add(ref a, block);
        ref byte c = ref Unsafe.Add(ref a, 2 * block);
        for (int i = 0; i < block; i += sizeof(ulong))
        {
            crc0 = Step(crc0, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref a, i)));
            crc1 = Step(crc1, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref b, i)));
            crc2 = Step(crc2, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref c, i)));
        }

        // CRC(s, A‖B) = advance(CRC(s, A), |B| zero bytes) ^ CRC(0, B): the raw CRC is linear in its state.
        crc0 = Shift(shift, crc0) ^ crc1;
        return Shift(shift, crc0) ^ crc2;
    }

    private static uint Step(uint crc, ulong value) =>
        Sse42.X64.IsSupported ? (uint)Sse42.X64.Crc32(crc, value) : Crc32.Arm64.ComputeCrc32C(crc, value);

    private static uint Shift(uint[] table, uint crc) =>
        table[crc & 0xFF] ^ table[256 + ((crc >> 8) & 0xFF)] ^ table[512 + ((crc >> 16) & 0xFF)] ^ table[768 + (crc >> 24)];

    /// <summary>
    /// The map "advance a raw CRC state over <paramref name="length"/> zero bytes" as four byte-indexed tables
    /// (it is linear over GF(2), so the result for a state is the XOR of the results for its four bytes).
    /// Built from the 32 single-bit states, each advanced with the byte table.
    /// </summary>
    private static uint[] BuildZeroShift(int length)
    {
        Span<uint> bits = stackalloc uint[32];
        for (int bit = 0; bit < 32; bit++)
        {
            uint state = 1u << bit;
            for (int n = 0; n < length; n++)
            {
                state = UpdateByteTable(state, 0);
            }

            bits[bit] = state;
        }

        var table = new uint[4 * 256];
        for (int lane = 0; lane < 4; lane++)
        {
            for (int value = 0; value < 256; value++)
            {
                uint result = 0;
                for (int bit = 0; bit < 8; bit++)
                {
                    if ((value & (1 << bit)) != 0)
                    {
                        result ^= bits[(8 * lane) + bit];
                    }
                }

                table[(256 * lane) + value] = result;
            }
        }

        return table;
    }

    private static uint UpdateByte(uint crc, byte value)
    {
        if (Sse42.IsSupported)
        {
            return Sse42.Crc32(crc, value);
        }

        if (Crc32.IsSupported)
        {
            return Crc32.ComputeCrc32C(crc, value);
        }

        return UpdateByteTable(crc, value);
    }

    private static uint UpdateByteTable(uint crc, byte value) => Table[(crc ^ value) & 0xFF] ^ (crc >> 8);

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
