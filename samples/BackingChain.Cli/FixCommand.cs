using System;
using System.Collections.Immutable;
using System.IO;
using BackingChain.Editing;
using BackingChain.Trust;

namespace BackingChain.Cli;

/// <summary>
/// <c>check --fix</c>: records, natively, the missing backing formats the verdict allows (the fixes the remediation
/// lists, plus QED images above raw), one line per change. The caller judges the chain again afterwards.
/// </summary>
internal static class FixCommand
{
    /// <summary>Applies the fixes of <paramref name="report"/>, printing each change to <paramref name="changes"/>.</summary>
    /// <returns>How many images were changed, and whether every planned fix was made.</returns>
    public static (int Changed, bool AllMade) Apply(TrustReport report, TextWriter changes)
    {
        ImmutableArray<BackingFormatFix> fixes = BackingFormatFix.Plan(report);
        int changed = 0;
        bool allMade = true;
        foreach (BackingFormatFix fix in fixes)
        {
            try
            {
                fix.Apply();
                changed++;
                changes.WriteLine($"fixed: {HumanOutput.Escape(fix.ImagePath)}: recorded backing format {fix.BackingFormat.GetQemuName()} for '{HumanOutput.Escape(fix.BackingName)}' (as {HumanOutput.Escape(fix.QemuImgCommand)})");
            }
            catch (BackingEditException ex)
            {
                allMade = false;
                Console.Error.WriteLine($"backing-chain: Could not fix '{HumanOutput.Escape(fix.ImagePath)}': {HumanOutput.Escape(ex.Message)}");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                allMade = false;
                Console.Error.WriteLine($"backing-chain: Could not open '{HumanOutput.Escape(fix.ImagePath)}': {SystemErrors.Describe(ex)}");
            }
        }

        if (fixes.IsEmpty)
        {
            changes.WriteLine("fixed: nothing (no missing backing format of a layer the verdict accepts)");
        }

        return (changed, allMade);
    }
}
