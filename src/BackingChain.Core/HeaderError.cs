namespace BackingChain;

/// <summary>
/// Why an image header could not be read. Carried by <see cref="ImageFormatException"/> and returned by
/// every <c>TryParse</c>.
/// </summary>
public enum HeaderError
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The buffer ends before the structure the header describes.</summary>
    Truncated,

    /// <summary>The magic number is not the format's.</summary>
    BadMagic,

    /// <summary>The format version is not one the reader (and qemu) supports.</summary>
    UnsupportedVersion,

    /// <summary>The header sets an incompatible feature that the reader does not know.</summary>
    UnsupportedFeature,

    /// <summary>A size field is out of the range the format allows (cluster size, header length, name length...).</summary>
    InvalidSize,

    /// <summary>An offset field points outside the region it must lie in, or is misaligned.</summary>
    InvalidOffset,

    /// <summary>A header extension or sub-structure is malformed.</summary>
    InvalidExtension,

    /// <summary>A checksum does not match.</summary>
    BadChecksum,

    /// <summary>Fields contradict each other (for example a compression type without its feature bit).</summary>
    Inconsistent,

    /// <summary>A text part (such as a descriptor) is malformed.</summary>
    InvalidText,
}
