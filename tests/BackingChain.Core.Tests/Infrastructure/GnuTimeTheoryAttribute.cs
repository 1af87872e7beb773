using System.IO;

namespace BackingChain.Tests.Infrastructure;

/// <summary>A theory that reads a child's peak resident set with GNU time (<c>/usr/bin/time -f %M</c>): skipped, with the reason shown, without it.</summary>
internal sealed class GnuTimeTheoryAttribute : TheoryAttribute
{
    public GnuTimeTheoryAttribute()
    {
        if (!File.Exists("/usr/bin/time"))
        {
            Skip = "GNU time is not installed (apt-get install time)";
        }
    }
}
