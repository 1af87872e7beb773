namespace BackingChain.Formats.Luks;

/// <summary>The LUKS1 on-disk header (cryptsetup's LUKS1 specification; qemu crypto/block-luks-priv.h). Big-endian.</summary>
internal static class LuksLayout
{
    /// <summary>"LUKS\xBA\xBE".</summary>
    public static System.ReadOnlySpan<byte> Magic => [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xBA, 0xBE];

    public const int MagicLength = 6;
    public const int VersionOffset = MagicLength;
    public const int CipherNameOffset = VersionOffset + sizeof(ushort);
    public const int NameFieldLength = 32;
    public const int CipherModeOffset = CipherNameOffset + NameFieldLength;
    public const int HashSpecOffset = CipherModeOffset + NameFieldLength;
    public const int PayloadOffsetOffset = HashSpecOffset + NameFieldLength;
    public const int KeyBytesOffset = PayloadOffsetOffset + sizeof(uint);
    public const int MasterKeyDigestOffset = KeyBytesOffset + sizeof(uint);
    public const int DigestLength = 20;
    public const int MasterKeyDigestSaltOffset = MasterKeyDigestOffset + DigestLength;
    public const int SaltLength = 32;
    public const int MasterKeyDigestIterationsOffset = MasterKeyDigestSaltOffset + SaltLength;
    public const int UuidOffset = MasterKeyDigestIterationsOffset + sizeof(uint);
    public const int UuidLength = 40;
    public const int KeySlotsOffset = UuidOffset + UuidLength; // 208

    public const int KeySlotCount = 8;
    public const int KeySlotActiveOffset = 0;
    public const int KeySlotIterationsOffset = KeySlotActiveOffset + sizeof(uint);
    public const int KeySlotSaltOffset = KeySlotIterationsOffset + sizeof(uint);
    public const int KeySlotKeyMaterialOffsetOffset = KeySlotSaltOffset + SaltLength;
    public const int KeySlotStripesOffset = KeySlotKeyMaterialOffsetOffset + sizeof(uint);
    public const int KeySlotSize = KeySlotStripesOffset + sizeof(uint); // 48

    public const int HeaderLength = KeySlotsOffset + KeySlotCount * KeySlotSize; // 592

    public const uint KeySlotEnabled = 0x00AC71F3;
    public const uint KeySlotDisabled = 0x0000DEAD;
    public const int SectorSize = 512;
}
