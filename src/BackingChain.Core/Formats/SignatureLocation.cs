namespace BackingChain.Formats;

/// <summary>Where thorough detection saw a format's signature.</summary>
public enum SignatureLocation
{
    /// <summary>In the first bytes of the image.</summary>
    Head,

    /// <summary>In the last bytes of the image (a fixed VHD footer, a DMG "koly" trailer).</summary>
    Tail,

    /// <summary>Only in the file name (qemu's dmg probe); never evidence of content.</summary>
    FileName,
}
