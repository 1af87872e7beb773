namespace BackingChain.Formats.Vpc;

/// <summary>How a parent locator entry stores the parent's location (the four ASCII bytes, big-endian).</summary>
internal enum VhdPlatformCode : uint
{
    /// <summary>An unused locator slot.</summary>
    None = 0,

    /// <summary>"Wi2r": deprecated relative Windows path.</summary>
    Wi2r = 0x57693272,

    /// <summary>"Wi2k": deprecated absolute Windows path.</summary>
    Wi2k = 0x5769326B,

    /// <summary>"W2ru": relative Windows path, UTF-16 little-endian.</summary>
    W2ru = 0x57327275,

    /// <summary>"W2ku": absolute Windows path, UTF-16 little-endian.</summary>
    W2ku = 0x57326B75,

    /// <summary>"Mac ": a Mac OS alias record (binary).</summary>
    Mac = 0x4D616320,

    /// <summary>"MacX": a <c>file://</c> URL, UTF-8.</summary>
    MacX = 0x4D616358,
}
