namespace BackingChain.Trust;

/// <summary>
/// Whose word an image's header is. The posture decides which files a chain may name; everything else about the
/// verdict is the same in both.
/// </summary>
[System.ComponentModel.TypeConverter(typeof(TrustPostureConverter))]
public enum TrustPosture
{
    /// <summary>
    /// The host administrator's images (libvirt's rule, the default). The top image and every format an overlay
    /// records are the administrator's, so the files they name are followed wherever they lie. A format that had to
    /// be probed may be used only if it is raw, or the image names no other file, or every file it names is
    /// present and trusted; a probed image whose content shows several formats is ambiguous and refused.
    /// </summary>
    Host,

    /// <summary>
    /// Images from someone else: uploads, tenants' images, downloaded appliances (the upload gate's default). The
    /// header is the attacker's even when its format is declared, so every file the chain names — backing file,
    /// data file, extent, parent — must be trusted by location or by pinned digest, whatever the format source.
    /// A declared raw image names nothing. The probed-format rules of <see cref="Host"/> apply as well.
    /// </summary>
    UntrustedImage,
}
