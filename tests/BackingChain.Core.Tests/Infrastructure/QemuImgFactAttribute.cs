namespace BackingChain.Tests.Infrastructure;

/// <summary>A fact that needs the oracle: skipped, with the reason shown, where qemu-img is absent.</summary>
internal sealed class QemuImgFactAttribute : FactAttribute
{
    public QemuImgFactAttribute()
    {
        if (!QemuImg.IsAvailable)
        {
            Skip = QemuImg.MissingReason;
        }
    }
}

/// <summary>A theory that needs the oracle: skipped, with the reason shown, where qemu-img is absent.</summary>
internal sealed class QemuImgTheoryAttribute : TheoryAttribute
{
    public QemuImgTheoryAttribute()
    {
        if (!QemuImg.IsAvailable)
        {
            Skip = QemuImg.MissingReason;
        }
    }
}
