using System;
using System.IO;

namespace BackingChain.Tests.Infrastructure;

/// <summary>Runs libvirt's own schema check, <c>virt-xml-validate FILE domain</c> (Debian's libvirt-clients; it needs xmllint from libxml2-utils).</summary>
internal static class VirtXmlValidate
{
    private static readonly Lazy<bool> Present = new(() => OnPath("virt-xml-validate") && OnPath("xmllint"));

    public static bool IsAvailable => Present.Value;

    public const string MissingReason = "virt-xml-validate or xmllint is not installed (apt-get install libvirt-clients libxml2-utils)";

    /// <summary>Wraps a <c>&lt;disk&gt;</c> element in a minimal domain and validates it; returns the exit code and output.</summary>
    public static (int ExitCode, string Output) ValidateDisk(string directory, string diskXml)
    {
        string file = Path.Combine(directory, "domain.xml");
        File.WriteAllText(file, "<domain type='kvm'><name>chain</name><memory unit='MiB'>64</memory><os><type>hvm</type></os><devices>\n"
            + diskXml + "</devices></domain>\n");
        return ValidateDomainFile(file);
    }

    /// <summary>Validates a whole domain document against libvirt's domain schema; returns the exit code and output.</summary>
    public static (int ExitCode, string Output) ValidateDomainFile(string file)
    {
        ProcessResult result = ProcessRunner.Run("virt-xml-validate", [file, "domain"]);
        return (result.ExitCode, result.StandardOutput + result.StandardError);
    }

    private static bool OnPath(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, name)))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>A fact that needs qemu-img and libvirt's schema validator: skipped, with the reason shown, where either is absent.</summary>
internal sealed class LibvirtSchemaFactAttribute : FactAttribute
{
    public LibvirtSchemaFactAttribute()
    {
        if (!QemuImg.IsAvailable)
        {
            Skip = QemuImg.MissingReason;
        }
        else if (!VirtXmlValidate.IsAvailable)
        {
            Skip = VirtXmlValidate.MissingReason;
        }
    }
}

/// <summary>A theory that needs qemu-img and libvirt's schema validator: skipped, with the reason shown, where either is absent.</summary>
internal sealed class LibvirtSchemaTheoryAttribute : TheoryAttribute
{
    public LibvirtSchemaTheoryAttribute()
    {
        if (!QemuImg.IsAvailable)
        {
            Skip = QemuImg.MissingReason;
        }
        else if (!VirtXmlValidate.IsAvailable)
        {
            Skip = VirtXmlValidate.MissingReason;
        }
    }
}
