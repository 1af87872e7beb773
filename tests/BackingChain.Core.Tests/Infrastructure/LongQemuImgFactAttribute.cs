using System;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// A fact that needs the oracle and a long run (gigabytes through the gate, or packing the library and building a
/// stranger's project on it): runs only with <c>BACKINGCHAIN_LONG_TESTS=1</c> (see the README's set-up section),
/// skipped with the reason shown otherwise, so that the suite CI runs stays short. <c>.ci/run</c> keeps a smoke of
/// each (a small upload; a pack).
/// </summary>
internal sealed class LongQemuImgFactAttribute : FactAttribute
{
    public LongQemuImgFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("BACKINGCHAIN_LONG_TESTS") != "1")
        {
            Skip = "a long run; set BACKINGCHAIN_LONG_TESTS=1 to run it";
        }
        else if (!QemuImg.IsAvailable)
        {
            Skip = QemuImg.MissingReason;
        }
    }
}
