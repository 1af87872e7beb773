using System;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// A fact that needs the oracle and a long run (gigabytes through the gate): runs only with
/// <c>BACKINGCHAIN_LONG_TESTS=1</c> (see the README's "Tests" section), skipped with the reason shown otherwise.
/// </summary>
internal sealed class LongQemuImgFactAttribute : FactAttribute
{
    public LongQemuImgFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("BACKINGCHAIN_LONG_TESTS") != "1")
        {
            Skip = "a long run (gigabytes through the gate); set BACKINGCHAIN_LONG_TESTS=1 to run it";
        }
        else if (!QemuImg.IsAvailable)
        {
            Skip = QemuImg.MissingReason;
        }
    }
}
