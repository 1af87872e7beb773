using System;

namespace BackingChain.Formats.Qed;

/// <summary>The QED feature bits (<c>features</c> field); any other bit makes qemu refuse the image.</summary>
[Flags]
internal enum QedFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,

    /// <summary>QED_F_BACKING_FILE: the image has a backing file.</summary>
    BackingFile = 1,

    /// <summary>QED_F_NEED_CHECK: the image was not closed cleanly and needs a consistency check.</summary>
    NeedCheck = 2,

    /// <summary>QED_F_BACKING_FORMAT_NO_PROBE: the backing file is raw and must not be probed.</summary>
    BackingFormatNoProbe = 4,

    /// <summary>Every bit qemu 7.2 knows (QED_FEATURE_MASK).</summary>
    Known = BackingFile | NeedCheck | BackingFormatNoProbe,
}
