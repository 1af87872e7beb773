using System;
using System.Collections.Immutable;
using System.Text.Json;

namespace BackingChain.Formats.Luks;

/// <summary>What qemu reports about a LUKS header (<c>QCryptoBlockInfoLUKS</c>), for luks images and LUKS-encrypted qcow2.</summary>
public sealed class LuksFormatInfo : FormatSpecificInfo
{
    internal LuksFormatInfo()
    {
    }

    /// <inheritdoc/>
    public override string Kind => "luks";

    /// <summary>qemu's cipher algorithm name, e.g. <c>"aes-256"</c>.</summary>
    public string CipherAlgorithm { get; internal init; } = "";

    /// <summary>The cipher mode, e.g. <c>"xts"</c>.</summary>
    public string CipherMode { get; internal init; } = "";

    /// <summary>The IV generator, e.g. <c>"plain64"</c>.</summary>
    public string IvGeneratorAlgorithm { get; internal init; } = "";

    /// <summary>The IV generator's hash (ESSIV only), or <see langword="null"/>.</summary>
    public string? IvGeneratorHashAlgorithm { get; internal init; }

    /// <summary>The hash, e.g. <c>"sha256"</c>.</summary>
    public string HashAlgorithm { get; internal init; } = "";

    /// <summary>Offset of the payload in bytes.</summary>
    public long PayloadOffset { get; internal init; }

    /// <summary>PBKDF2 iterations of the master key digest.</summary>
    public uint MasterKeyIterations { get; internal init; }

    /// <summary>The volume UUID.</summary>
    public string Uuid { get; internal init; } = "";

    /// <summary>The eight key slots.</summary>
    public ImmutableArray<LuksKeySlot> Slots { get; internal init; } = ImmutableArray<LuksKeySlot>.Empty;

    /// <summary>Builds the info qemu would report from a parsed header.</summary>
    /// <param name="data">The buffer that was parsed.</param>
    /// <param name="header">The parsed header.</param>
    /// <returns>The info.</returns>
    internal static LuksFormatInfo FromHeader(ReadOnlySpan<byte> data, in Luks1Header header)
    {
        string cipherName = Luks1Header.GetCipherName(data);
        string fullMode = Luks1Header.GetCipherMode(data);

        // "xts-plain64" -> mode xts, ivgen plain64; "cbc-essiv:sha256" -> cbc, essiv, sha256.
        int dash = fullMode.IndexOf('-', StringComparison.Ordinal);
        string mode = dash < 0 ? fullMode : fullMode[..dash];
        string ivgen = dash < 0 ? "plain" : fullMode[(dash + 1)..];
        string? ivgenHash = null;
        int colon = ivgen.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            // qemu parses the hash for every IV generator but reports it only for ESSIV (qcrypto_block_luks_get_info).
            ivgenHash = ivgen[(colon + 1)..];
            ivgen = ivgen[..colon];
            if (ivgen != "essiv")
            {
                ivgenHash = null;
            }
        }

        // XTS uses two keys of half the master key's length.
        uint keyBytes = mode == "xts" ? header.KeyBytes / 2 : header.KeyBytes;
        var slots = ImmutableArray.CreateBuilder<LuksKeySlot>(LuksLayout.KeySlotCount);
        for (int i = 0; i < LuksLayout.KeySlotCount; i++)
        {
            slots.Add(Luks1Header.GetKeySlot(data, i));
        }

        return new LuksFormatInfo
        {
            CipherAlgorithm = QemuCipherName(cipherName, keyBytes),
            CipherMode = mode,
            IvGeneratorAlgorithm = ivgen,
            IvGeneratorHashAlgorithm = ivgenHash,
            HashAlgorithm = Luks1Header.GetHashSpec(data),
            PayloadOffset = header.PayloadOffset,
            MasterKeyIterations = header.MasterKeyDigestIterations,
            Uuid = Luks1Header.GetUuid(data),
            Slots = slots.MoveToImmutable(),
        };
    }

    /// <inheritdoc/>
    internal override void WriteQemuData(Utf8JsonWriter writer)
    {
        writer.WriteString("cipher-alg", CipherAlgorithm);
        writer.WriteString("cipher-mode", CipherMode);
        writer.WriteString("ivgen-alg", IvGeneratorAlgorithm);
        if (IvGeneratorHashAlgorithm is not null)
        {
            writer.WriteString("ivgen-hash-alg", IvGeneratorHashAlgorithm);
        }

        writer.WriteString("hash-alg", HashAlgorithm);
        writer.WriteNumber("payload-offset", PayloadOffset);
        writer.WriteNumber("master-key-iters", MasterKeyIterations);
        writer.WriteString("uuid", Uuid);
        writer.WriteStartArray("slots");
        foreach (LuksKeySlot slot in Slots)
        {
            writer.WriteStartObject();
            writer.WriteBoolean("active", slot.Active);
            if (slot.Active)
            {
                writer.WriteNumber("iters", slot.Iterations);
                writer.WriteNumber("stripes", slot.Stripes);
            }

            writer.WriteNumber("key-offset", slot.KeyOffset);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    private static string QemuCipherName(string cipher, uint keyBytes) => (cipher, keyBytes) switch
    {
        ("cast5", 16) => "cast5-128",
        ("sm4", 16) => "sm4",
        ("aes" or "serpent" or "twofish", 16 or 24 or 32) => $"{cipher}-{keyBytes * 8}",
        _ => $"{cipher}-{keyBytes * 8}",
    };
}
