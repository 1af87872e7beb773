using System;
using System.IO;
using System.Threading;

namespace BackingChain.Tests.Infrastructure;

/// <summary>
/// A running libvirtd (Debian 12's libvirt 9.0 with QEMU 7.2) for the tests that hold <c>domain</c>'s prediction
/// against libvirt itself: started once per test run (virtlogd, then libvirtd, both daemonised; one already running is
/// used as it is) when the tests run as root with the packages present, else a reason to skip.
/// </summary>
internal static class LibvirtDaemon
{
    /// <summary>Where the tests put their images: libvirt's own directory, which its qemu user may enter.</summary>
    public const string ImageDirectory = "/var/lib/libvirt/images";

    public const string Uri = "qemu:///system";

    private static readonly string[] Programs = ["/usr/sbin/libvirtd", "/usr/sbin/virtlogd", "/usr/bin/virsh", "/usr/bin/qemu-system-x86_64"];

    private static readonly Lazy<string?> Missing = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Why libvirt cannot run here, or <see langword="null"/> once it answers.</summary>
    public static string? MissingReason => Missing.Value;

    /// <summary>Runs virsh against the system daemon.</summary>
    public static ProcessResult Virsh(params string[] arguments) =>
        ProcessRunner.Run("/usr/bin/virsh", ["-q", "-c", Uri, .. arguments], timeout: TimeSpan.FromMinutes(1));

    private static string? Start()
    {
        if (!QemuImg.IsAvailable)
        {
            return QemuImg.MissingReason;
        }

        if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
        {
            return "libvirtd is started only by tests that run as root (.ci/run does); this run is not root";
        }

        foreach (string program in Programs)
        {
            if (!File.Exists(program))
            {
                return $"{program} is missing (apt-get install libvirt-daemon-system libvirt-daemon-driver-qemu qemu-system-x86; .ci/run installs them)";
            }
        }

        if (Virsh("version").ExitCode == 0)
        {
            return null;
        }

        // Daemonised with their outputs closed, so nothing here waits on a pipe they hold.
        ProcessRunner.Run("/bin/sh", ["-c", "pgrep -x virtlogd >/dev/null || /usr/sbin/virtlogd -d </dev/null >/dev/null 2>&1; pgrep -x libvirtd >/dev/null || /usr/sbin/libvirtd -d </dev/null >/dev/null 2>&1"]);
        ProcessResult last = default;
        for (int attempt = 0; attempt < 60; attempt++)
        {
            last = Virsh("version");
            if (last.ExitCode == 0)
            {
                return null;
            }

            Thread.Sleep(500);
        }

        return $"libvirtd did not answer on {Uri}: {last.StandardError.Trim()}";
    }
}

/// <summary>A fact that needs a running libvirtd: skipped, with the reason shown, where it cannot run.</summary>
internal sealed class LibvirtFactAttribute : FactAttribute
{
    public LibvirtFactAttribute()
    {
        if (LibvirtDaemon.MissingReason is string reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>A theory that needs a running libvirtd: skipped, with the reason shown, where it cannot run.</summary>
internal sealed class LibvirtTheoryAttribute : TheoryAttribute
{
    public LibvirtTheoryAttribute()
    {
        if (LibvirtDaemon.MissingReason is string reason)
        {
            Skip = reason;
        }
    }
}
