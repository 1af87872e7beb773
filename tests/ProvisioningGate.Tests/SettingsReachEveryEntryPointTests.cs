using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.IO.Pipelines;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Tasks;
using BackingChain;
using BackingChain.Chain;
using BackingChain.Hosting;
using BackingChain.Interop;
using BackingChain.Store;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using BackingChain.Walk;

namespace ProvisioningGate.Tests;

/// <summary>
/// Each setting of the one configuration × each entry point a container hands out (resolver, upload gate, store
/// scanner, domain reader): the same chain judged with and without the setting, and the setting's effect seen in
/// every entry point's verdict. Seen by a user before: MaxDepth never reached the gate, the scanner dropped the
/// sources and the deadline, upload walks logged nothing.
/// </summary>
public sealed class SettingsReachEveryEntryPointTests : IAsyncDisposable
{
    public enum EntryPoint
    {
        Resolver,
        UploadGate,
        StoreScanner,
        DomainReader,
    }

    private readonly ScratchDirectory _dir = new();
    private readonly RangeServer _server = new();
    private readonly RangeServer _slow = new() { Delay = TimeSpan.FromSeconds(1) };

    public SettingsReachEveryEntryPointTests()
    {
        // A local chain of three (top -> mid -> base), one over HTTP (utop -> base.raw on the server), one over a slow server.
        Directory.CreateDirectory(_dir["store"]);
        Directory.CreateDirectory(_dir["url"]);
        Directory.CreateDirectory(_dir["slow"]);
        if (!QemuImg.IsAvailable)
        {
            return;
        }

        QemuImg.Run(_dir["store"], "create", "-q", "-f", "raw", "base.raw", "1M");
        QemuImg.Run(_dir["store"], "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "mid.qcow2");
        QemuImg.Run(_dir["store"], "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");
        byte[] raw = File.ReadAllBytes(_dir["store/base.raw"]);
        _server.Add("base.raw", raw);
        _slow.Add("base.raw", raw);
        QemuImg.Run(_dir["url"], "create", "-q", "-f", "qcow2", "-u", "-b", _server.Url("base.raw"), "-F", "raw", "top.qcow2", "1M");
        QemuImg.Run(_dir["slow"], "create", "-q", "-f", "qcow2", "-u", "-b", _slow.Url("base.raw"), "-F", "raw", "top.qcow2", "1M");
    }

    public static TheoryData<string, EntryPoint> Table()
    {
        var data = new TheoryData<string, EntryPoint>();
        foreach (string setting in new[] { "MaxDepth", "TrustedRoots", "PinnedImages", "TrustedUrlPrefixes", "Posture", "Timeout", "Logger" })
        {
            foreach (EntryPoint entry in Enum.GetValues<EntryPoint>())
            {
                data.Add(setting, entry);
            }
        }

        return data;
    }

    [QemuImgTheory]
    [MemberData(nameof(Table))]
    public async Task A_setting_has_its_effect_in_every_entry_point(string setting, EntryPoint entry)
    {
        string store = _dir["store"];
        Row row = setting switch
        {
            // With the store trusted the chain is walked to its end; a cap of 2 stops it.
            "MaxDepth" => new Row("store", new() { ["BackingChain:TrustedRoots:0"] = store }, new() { ["BackingChain:MaxDepth"] = "2" },
                (r, _) => r.Chain.Ending == ChainEnding.TooDeep),
            "TrustedRoots" => new Row("store", new(), new() { ["BackingChain:TrustedRoots:0"] = store }, (r, _) => r.IsSafe),
            "PinnedImages" => new Row("store", new(), new()
            {
                ["BackingChain:PinnedImages:0"] = Pin(Path.Combine(store, "mid.qcow2")),
                ["BackingChain:PinnedImages:1"] = Pin(Path.Combine(store, "base.raw")),
            }, (r, _) => r.IsSafe),

            // Only the prefix is configured: the registered HTTP source must come with it.
            "TrustedUrlPrefixes" => new Row("url", new(), new() { ["BackingChain:TrustedUrlPrefixes:0"] = _server.Url("") },
                (r, _) => r.IsSafe && r.Chain.Layers.Length == 2),
            "Posture" => new Row("store", new(), new() { ["BackingChain:Posture"] = "host" }, (r, _) => r.Posture == TrustPosture.Host),
            "Timeout" => new Row("slow", new() { ["BackingChain:TrustedUrlPrefixes:0"] = _slow.Url("") }, new() { ["BackingChain:Timeout"] = "00:00:00.3" },
                (r, _) => r.Chain.ErrorMessage?.Contains("deadline", StringComparison.Ordinal) == true),

            // Not a configuration key: the container's loggers, which every entry point must hand to its walk.
            "Logger" => new Row("store", new(), new() { ["(logger)"] = "on" },
                (_, logs) => logs.Entries.Any(e => e.Category == CategoryOf(entry) && e.EventId == 1)),
            _ => throw new ArgumentOutOfRangeException(nameof(setting)),
        };

        (TrustReport without, Logs withoutLogs) = await JudgeAsync(entry, row.Folder, row.Baseline);
        (TrustReport with, Logs withLogs) = await JudgeAsync(entry, row.Folder, new(row.Baseline.Concat(row.Changed)));

        Assert.False(row.Effect(without, withoutLogs), $"{setting} × {entry}: the effect is there without the setting: {without}");
        Assert.True(row.Effect(with, withLogs), $"{setting} × {entry}: the setting had no effect: {with}");
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await _slow.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary>One row: the chain's folder, the settings without and with the one under test, and its effect.</summary>
    private sealed record Row(string Folder, Dictionary<string, string?> Baseline, Dictionary<string, string?> Changed, Func<TrustReport, Logs, bool> Effect);

    private static string Pin(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))) + "=" + path;

    private static string CategoryOf(EntryPoint entry) => entry switch
    {
        EntryPoint.Resolver => typeof(ImageChainResolver).FullName!,
        EntryPoint.UploadGate => typeof(ImageUploadGate).FullName!,
        EntryPoint.StoreScanner => typeof(ImageStoreScanner).FullName!,
        _ => typeof(LibvirtDomainReader).FullName!,
    };

    private async Task<(TrustReport Report, Logs Logs)> JudgeAsync(EntryPoint entry, string folder, Dictionary<string, string?> settings)
    {
        var logs = new Logs();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        if (settings.ContainsKey("(logger)"))
        {
            services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        }

        services.AddBackingChain();
        await using ServiceProvider provider = services.BuildServiceProvider();
        string top = Path.Combine(_dir[folder], "top.qcow2");
        switch (entry)
        {
            case EntryPoint.Resolver:
                return (await provider.GetRequiredService<ImageChainResolver>().CheckAsync(top, ImageFormat.Qcow2), logs);
            case EntryPoint.UploadGate:
                // Stored beside the top, so its relative names resolve as the file's do.
                UploadInspection inspection = await provider.GetRequiredService<ImageUploadGate>().InspectAsync(
                    PipeReader.Create(new MemoryStream(File.ReadAllBytes(top))), Path.Combine(_dir[folder], "upload.qcow2"), ImageFormat.Qcow2);
                return (inspection.Report, logs);
            case EntryPoint.StoreScanner:
                StoreGraph graph = await provider.GetRequiredService<ImageStoreScanner>().ScanGraphAsync(_dir[folder]);
                return (graph.Images.Single(i => i.Path == top).Report, logs);
            default:
                string xml = $"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{top}'/><target dev='vda'/></disk>";
                var disks = await provider.GetRequiredService<LibvirtDomainReader>().ReadAsync(new MemoryStream(Encoding.UTF8.GetBytes(xml)));
                return (Assert.Single(disks).Report, logs);
        }
    }

    /// <summary>Every log entry written, with its category.</summary>
    public sealed class Logs : ILoggerProvider
    {
        public ConcurrentQueue<(string Category, int EventId, string Message)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(Logs logs, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                logs.Entries.Enqueue((category, eventId.Id, formatter(state, exception)));
        }
    }
}
