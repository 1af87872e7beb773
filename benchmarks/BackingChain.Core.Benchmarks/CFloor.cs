using System;
using System.Diagnostics;
using System.IO;
using System.Runtime.InteropServices;

namespace BackingChain.Benchmarks;

/// <summary>
/// The C loops of <c>baseline/walk-floor.c</c>, compiled at setup with the system's C compiler into a shared library
/// and called in process, so the walk and its C floor are measured in one run. The paths are converted to C strings
/// once, at setup: a call is one transition into C and then only the C loop.
/// </summary>
public sealed unsafe class CFloor : IDisposable
{
    private readonly nint _library;
    private readonly delegate* unmanaged<byte**, int, byte*, long> _floor;
    private readonly delegate* unmanaged<byte**, int, byte*, long> _asLibrary;
    private readonly byte** _paths;
    private readonly int _count;
    private readonly byte* _buffer;

    private CFloor(nint library, string[] paths)
    {
        _library = library;
        _floor = (delegate* unmanaged<byte**, int, byte*, long>)NativeLibrary.GetExport(library, "walk_floor");
        _asLibrary = (delegate* unmanaged<byte**, int, byte*, long>)NativeLibrary.GetExport(library, "walk_floor_as_library");
        _count = paths.Length;
        _paths = (byte**)NativeMemory.AllocZeroed((nuint)paths.Length, (nuint)sizeof(byte*));
        for (int i = 0; i < paths.Length; i++)
        {
            _paths[i] = (byte*)Marshal.StringToCoTaskMemUTF8(paths[i]);
        }

        _buffer = (byte*)NativeMemory.AlignedAlloc(4096, 4096);
    }

    /// <summary>Builds <c>walk-floor.c</c> (copied next to the benchmarks) into a temporary shared library and loads it.</summary>
    public static CFloor Load(string[] paths)
    {
        string source = Path.Combine(AppContext.BaseDirectory, "baseline", "walk-floor.c");
        string library = Path.Combine(Path.GetTempPath(), $"backingchain-walk-floor-{Environment.ProcessId}.so");
        using (var cc = Process.Start(new ProcessStartInfo("cc", ["-O2", "-shared", "-fPIC", "-o", library, source]) { RedirectStandardError = true })!)
        {
            string errors = cc.StandardError.ReadToEnd();
            cc.WaitForExit();
            if (cc.ExitCode != 0)
            {
                throw new InvalidOperationException($"cc failed on {source}: {errors}");
            }
        }

        var floor = new CFloor(NativeLibrary.Load(library), paths);
        File.Delete(library); // the mapping stays
        return floor;
    }

    /// <summary><c>open + pread(4096) + close</c> per path; the bytes read.</summary>
    public long Floor() => Check(_floor(_paths, _count, _buffer));

    /// <summary>The system calls the library makes per path (<c>open(O_NONBLOCK) + statx + pread</c>, one <c>close_range</c> per 32).</summary>
    public long AsLibrary() => Check(_asLibrary(_paths, _count, _buffer));

    private static long Check(long total) => total >= 0 ? total : throw new IOException("the C loop failed");

    public void Dispose()
    {
        for (int i = 0; i < _count; i++)
        {
            Marshal.FreeCoTaskMem((nint)_paths[i]);
        }

        NativeMemory.Free(_paths);
        NativeMemory.AlignedFree(_buffer);
        NativeLibrary.Free(_library);
    }
}
