using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using BackingChain;
using BackingChain.Chain;
using BackingChain.Hosting;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ProvisioningGate.Tests;

/// <summary>The library's DI registration and its options, filled by the configuration binder as an application would.</summary>
public sealed class AddBackingChainTests
{
    private static IConfiguration Configuration(Dictionary<string, string?> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values).Build();

    [Fact]
    public void Binder_fills_every_option_from_a_configuration_section()
    {
        using var first = new ScratchDirectory();
        using var second = new ScratchDirectory();
        IConfiguration configuration = Configuration(new()
        {
            ["BackingChain:Posture"] = "Host",
            ["BackingChain:TrustedRoots:0"] = first.Path,
            ["BackingChain:TrustedRoots:1"] = second.Path,
            ["BackingChain:PinnedImages:0"] = new string('a', 64) + "=/srv/base/debian.raw",
            ["BackingChain:TrustedUrlPrefixes:0"] = "https://images.example/base/",
            ["BackingChain:MaxDigestFileLength"] = "1024",
            ["BackingChain:MaxDepth"] = "7",
            ["BackingChain:Timeout"] = "00:00:05",
            ["BackingChain:SparseDestination"] = "false",
            ["BackingChain:HeadWindowLength"] = "8192",
            ["BackingChain:TailWindowLength"] = "1024",
            ["BackingChain:ComputeSha256"] = "true",
            ["BackingChain:AllowEmptyUpload"] = "true",
        });
        var options = new BackingChainOptions();

        configuration.GetSection(BackingChainOptions.SectionName).Bind(options);
        UploadInspectionOptions upload = options.BuildUploadInspectionOptions();
        ImageChainResolverOptions resolver = options.BuildResolverOptions();

        Assert.Equal(TrustPosture.Host, upload.Policy.Posture);
        Assert.Equal([first.Path, second.Path], [.. upload.Policy.TrustedRoots]);
        ImagePin pin = Assert.Single(upload.Policy.PinnedImages);
        Assert.Equal((new string('a', 64), "/srv/base/debian.raw"), (pin.Sha256, pin.Location));
        Assert.Contains("images.example", Assert.Single(upload.Policy.TrustedUrlPrefixes), StringComparison.Ordinal);
        Assert.Equal(1024, upload.Policy.MaxDigestFileLength);
        Assert.Equal(8192, upload.HeadWindowLength);
        Assert.Equal(1024, upload.TailWindowLength);
        Assert.True(upload.ComputeSha256);
        Assert.True(upload.AllowEmpty);
        Assert.Equal(7, resolver.MaxDepth);
        Assert.Equal([first.Path, second.Path], [.. resolver.Policy.TrustedRoots]);

        // The walk's settings reach the gate as well as the resolver: one setting, every entry point.
        Assert.Equal((7, TimeSpan.FromSeconds(5)), (upload.MaxDepth, upload.Timeout));
        Assert.Equal(TimeSpan.FromSeconds(5), resolver.Timeout);
        Assert.False(upload.SparseDestination);
    }

    [QemuImgFact]
    public async Task The_depth_cap_of_the_configuration_bounds_the_chain_an_upload_heads()
    {
        // Seen by a user: with MaxDepth = 2, an upload over a 6-deep chain of trusted bases was accepted.
        using var root = new ScratchDirectory();
        QemuImg.Run(root.Path, "create", "-q", "-f", "raw", "l0.img", "1M");
        for (int i = 1; i < 6; i++)
        {
            QemuImg.Run(root.Path, "create", "-q", "-f", "qcow2", "-u", "-b", $"l{i - 1}.img", "-F", i == 1 ? "raw" : "qcow2", $"l{i}.img", "1M");
        }

        QemuImg.Run(root.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "l5.img", "-F", "qcow2", "upload.qcow2", "1M");
        byte[] upload = File.ReadAllBytes(root["upload.qcow2"]);

        async Task<UploadInspection> InspectAsync(string depth)
        {
            IConfiguration configuration = Configuration(new()
            {
                ["BackingChain:TrustedRoots:0"] = root.Path,
                ["BackingChain:MaxDepth"] = depth,
            });
            var services = new ServiceCollection();
            services.AddBackingChain(o => configuration.GetSection("BackingChain").Bind(o));
            using ServiceProvider provider = services.BuildServiceProvider();
            ImageUploadGate gate = provider.GetRequiredService<ImageUploadGate>();
            return await gate.InspectAsync(System.IO.Pipelines.PipeReader.Create(new MemoryStream(upload)), root["new.qcow2"], ImageFormat.Qcow2);
        }

        UploadInspection capped = await InspectAsync("2");
        UploadInspection deep = await InspectAsync("200");

        // The walk stops at the cap; the posture then counts the file it did not ask about as not trusted.
        Assert.False(capped.IsAccepted);
        Assert.Equal(ChainEnding.TooDeep, capped.Report.Chain.Ending);
        Assert.Contains(capped.Findings, f => f.Code == FindingCodes.ChainTooDeep);
        Assert.Equal(2, capped.Report.Chain.Layers.Length);
        Assert.True(deep.IsAccepted, deep.Reason.ToString());
        Assert.Equal(7, deep.Report.Chain.Layers.Length);
    }

    [Fact]
    public void Defaults_are_the_gates_safe_ones()
    {
        UploadInspectionOptions upload = new BackingChainOptions().BuildUploadInspectionOptions();

        Assert.Equal(TrustPosture.UntrustedImage, upload.Policy.Posture);
        Assert.Empty(upload.Policy.TrustedRoots);
        Assert.False(upload.AllowEmpty);
        Assert.Equal(UploadInspectionOptions.DefaultHeadWindowLength, upload.HeadWindowLength);
    }

    [Fact]
    public void AddBackingChain_one_container_gate_and_resolver_share_one_policy_from_configuration()
    {
        using var root = new ScratchDirectory();
        IConfiguration configuration = Configuration(new()
        {
            ["BackingChain:TrustedRoots:0"] = root.Path,
            ["BackingChain:AllowEmptyUpload"] = "true",
        });
        var services = new ServiceCollection();

        services.AddBackingChain(o => configuration.GetSection("BackingChain").Bind(o));
        using ServiceProvider provider = services.BuildServiceProvider();
        ImageUploadGate gate = provider.GetRequiredService<ImageUploadGate>();

        Assert.Same(gate, provider.GetRequiredService<ImageUploadGate>());
        Assert.Same(gate.Policy, provider.GetRequiredService<ImageChainResolverOptions>().Policy);
        Assert.NotNull(provider.GetRequiredService<ImageChainResolver>());
        Assert.Equal([root.Path], [.. gate.Policy.TrustedRoots]);
        Assert.Equal(TrustPosture.UntrustedImage, gate.Policy.Posture);
        Assert.True(gate.Options.AllowEmpty);
    }

    [Fact]
    public void AddBackingChain_called_twice_both_configurations_apply_in_order()
    {
        using var first = new ScratchDirectory();
        using var second = new ScratchDirectory();
        var services = new ServiceCollection();

        services.AddBackingChain(o => o.TrustedRoots.Add(first.Path));
        services.AddBackingChain(o =>
        {
            o.TrustedRoots.Add(second.Path);
            o.HeadWindowLength = 4096;
        });
        using ServiceProvider provider = services.BuildServiceProvider();
        ImageUploadGate gate = provider.GetRequiredService<ImageUploadGate>();

        Assert.Equal([first.Path, second.Path], [.. gate.Policy.TrustedRoots]);
        Assert.Equal(4096, gate.Options.HeadWindowLength);
    }

    [Theory]
    [InlineData("untrusted-image", TrustPosture.UntrustedImage)]
    [InlineData("Untrusted-Image", TrustPosture.UntrustedImage)]
    [InlineData("UntrustedImage", TrustPosture.UntrustedImage)]
    [InlineData("untrustedimage", TrustPosture.UntrustedImage)]
    [InlineData("host", TrustPosture.Host)]
    [InlineData("HOST", TrustPosture.Host)]
    [InlineData(" Host ", TrustPosture.Host)]
    public void Binder_AcceptsThePostureAsReportsSpellItAndAsTheEnumNamesIt_InAnyCase(string value, TrustPosture expected)
    {
        IConfiguration configuration = Configuration(new() { ["BackingChain:Posture"] = value });
        var options = new BackingChainOptions();

        configuration.GetSection(BackingChainOptions.SectionName).Bind(options);

        Assert.Equal(expected, options.BuildPolicy().Posture);
    }

    [Fact]
    public async Task The_health_check_names_a_trusted_root_that_went_away()
    {
        using var kept = new ScratchDirectory();
        using var removed = new ScratchDirectory();
        var services = new ServiceCollection();
        services.AddBackingChain(o => o.TrustedRoots.AddRange([kept.Path, removed.Path]));
        using ServiceProvider provider = services.BuildServiceProvider();
        BackingChainHealthCheck check = provider.GetRequiredService<BackingChainHealthCheck>();
        var context = new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext
        {
            Registration = new("backing-chain", check, Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy, null),
        };

        Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult before = await check.CheckHealthAsync(context);
        Directory.Delete(removed.Path);
        Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult after = await check.CheckHealthAsync(context);

        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy, before.Status);
        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Unhealthy, after.Status);
        Assert.Contains(removed.Path, after.Description, StringComparison.Ordinal);
        Assert.DoesNotContain(kept.Path, after.Description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("untrusted-image", TrustPosture.UntrustedImage)]
    [InlineData("UntrustedImage", TrustPosture.UntrustedImage)]
    [InlineData("host", TrustPosture.Host)]
    public void A_policy_bound_directly_takes_the_posture_as_reports_spell_it(string value, TrustPosture expected)
    {
        // Seen by a user: Get<TrustPolicy>() threw on "untrusted-image", the spelling every report writes.
        IConfiguration configuration = Configuration(new() { ["Policy:Posture"] = value, ["Policy:FollowUntrustedReferences"] = "false" });

        TrustPolicy policy = configuration.GetSection("Policy").Get<TrustPolicy>()!;

        Assert.Equal(expected, policy.Posture);
        Assert.Equal(expected.GetStableName(), System.ComponentModel.TypeDescriptor.GetConverter(typeof(TrustPosture)).ConvertToInvariantString(expected));
        Assert.ThrowsAny<InvalidOperationException>(() => Configuration(new() { ["Policy:Posture"] = "1" }).GetSection("Policy").Get<TrustPolicy>());
    }

    [Theory]
    [InlineData("tenant")]
    [InlineData("1")]
    [InlineData("untrusted_image")]
    [InlineData("")]
    public void Binder_RefusesAnyOtherPosture_SayingWhichSpellingsWork(string value)
    {
        IConfiguration configuration = Configuration(new() { ["BackingChain:Posture"] = value });
        var options = new BackingChainOptions();
        configuration.GetSection(BackingChainOptions.SectionName).Bind(options);

        ArgumentException error = Assert.ThrowsAny<ArgumentException>(() => options.BuildUploadInspectionOptions());

        Assert.StartsWith($"BackingChain:Posture: '{value}' is not a posture; use \"host\" or \"untrusted-image\"", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("BackingChain:Posture", "tenant")]
    [InlineData("BackingChain:TrustedRoots:0", "relative/root")]
    [InlineData("BackingChain:TrustedRoots:0", "/no/such/directory/anywhere")]
    [InlineData("BackingChain:PinnedImages:0", "not-a-digest")]
    [InlineData("BackingChain:PinnedImages:0", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [InlineData("BackingChain:HeadWindowLength", "12")]
    [InlineData("BackingChain:MaxDepth", "0")]
    [InlineData("BackingChain:Timeout", "-00:00:01")]
    [InlineData("BackingChain:TrustedUrlPrefixes:0", "ftp://images.example/base/")]
    [InlineData("BackingChain:TailWindowLength", "-1")]
    [InlineData("BackingChain:MaxDigestFileLength", "-1")]
    public void Invalid_settings_are_refused_when_the_gate_is_first_resolved_naming_the_setting(string key, string value)
    {
        // Without a host nothing starts, so validation runs when the options are first needed; with one, at start.
        IConfiguration configuration = Configuration(new() { [key] = value });
        var services = new ServiceCollection();
        services.AddSingleton(configuration);
        services.AddBackingChain();
        using ServiceProvider provider = services.BuildServiceProvider();

        OptionsValidationException error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<ImageUploadGate>());

        string failure = Assert.Single(error.Failures);
        Assert.StartsWith(key + ": ", failure, StringComparison.Ordinal);
        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }
}
