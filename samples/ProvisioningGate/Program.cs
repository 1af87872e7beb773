// A provisioning service's upload gate: tenants PUT disk images, the gate judges each as it streams to disk, and
// only accepted images are kept. See README.md ("The gate in ASP.NET Core") for the two commands that run it.
using System.Text.Json;
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using BackingChain;
using BackingChain.Chain;
using BackingChain.Hosting;
using BackingChain.Interop;
using BackingChain.Store;
using BackingChain.Streaming;
using BackingChain.Trust;
using BackingChain.Walk;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using ProvisioningGate;

WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
IConfiguration configuration = builder.Configuration;

// Read when first resolved, not now: a test host may still add settings after this line runs.
builder.Services.AddSingleton(_ => new ImageStore(ImageStore.RootFrom(configuration)));

// The library's settings come from the "BackingChain" section of appsettings.json (and any other configuration
// source), are validated when the host starts, and reach the gate, the resolver, the scanner and the domain reader
// alike. Overlays may name images already accepted here, and whatever else the configuration trusts.
builder.Services.AddBackingChain(options => options.TrustedRoots.Add(ImageStore.RootFrom(configuration)));
builder.Services.AddHealthChecks().AddCheck<BackingChainHealthCheck>("backing-chain");

// Every problem a tenant sees goes through IProblemDetailsService: a traceId, one content type, one place to customise.
builder.Services.AddProblemDetails();

WebApplication app = builder.Build();

// The store's folders are made before the host starts, where the settings (its root among the trusted) are checked.
app.Services.GetRequiredService<ImageStore>();
app.MapHealthChecks("/healthz");

app.MapGet("/images", ScanAsync);
app.MapPut("/images/{name}", UploadAsync);
app.MapGet("/images/{name}/chain", ChainAsync);
app.MapGet("/images/{name}/domain-disk", DomainDiskAsync);
app.MapDelete("/images/{name}", Delete);

// The floor benchmarks/compare-gate.sh measures the gate against, off unless asked for: the same Kestrel and the same
// file writes as an upload, without the gate.
if (configuration["BenchmarkDrain"] == "true")
{
    app.MapPut("/drain", DrainAsync);
}

app.Run();

static async Task<IResult> UploadAsync(string name, string? format, HttpContext context, ImageStore store, ImageUploadGate gate, CancellationToken cancellationToken)
{
    // Images are large: this endpoint, and only this one, takes bodies of any size. The gate holds only its windows.
    if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
    {
        limit.MaxRequestBodySize = null;
    }

    if (!store.IsValidName(name))
    {
        return Problem(StatusCodes.Status400BadRequest, "Invalid image name", $"'{name}' is not an image name: one segment of letters, digits, '.', '-' and '_', starting with a letter or digit.");
    }

    ImageFormat? declared = null;
    if (format is not null)
    {
        if (!ImageFormatNames.TryParse(format, out ImageFormat parsed))
        {
            return Problem(StatusCodes.Status400BadRequest, "Unknown format", $"'{format}' is not a format qemu knows.");
        }

        declared = parsed;
    }

    if (!store.TryReserve(name))
    {
        return Problem(StatusCodes.Status409Conflict, "Image exists", $"An image named '{name}' is already stored or being uploaded.");
    }

    string incoming = store.NewIncomingPath();
    bool committed = false;
    try
    {
        UploadInspection inspection;
        await using (var file = new FileStream(incoming, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
        {
            inspection = await gate.InspectAsync(context.Request.BodyReader, file, store.PathOf(name), declared, context.Request.ContentLength, cancellationToken);
        }

        if (!inspection.IsAccepted)
        {
            return TenantProblems.Rejected(inspection, context.Request.Path, store.Names);
        }

        var references = new List<string>();
        foreach (ImageReference reference in inspection.References)
        {
            if (reference.IsLocalPath && reference.FullName is { } full)
            {
                references.Add(Path.GetFullPath(full, store.Root));
            }
        }

        store.Commit(name, incoming, new StoredImage(inspection.Format.GetQemuName(), inspection.Length, references));
        committed = true;
        var body = new MemoryStream();
        UploadInspectionJson.Write(body, inspection, store.Names);
        context.Response.Headers.Location = $"/images/{name}";
        return Results.Text(body.ToArray(), "application/json", StatusCodes.Status201Created);
    }
    catch (Exception e) when (e is IOException or OperationCanceledException)
    {
        // The client went away or the body broke off: nothing was judged, nothing is kept. (BadHttpRequestException
        // for a short body is an IOException too.)
        // Not e.Message: an I/O error names the server's files.
        return Problem(StatusCodes.Status400BadRequest, "Upload failed", "The upload broke off or could not be stored; nothing was kept.");
    }
    finally
    {
        if (!committed)
        {
            File.Delete(incoming);
        }

        store.Release(name);
    }
}

static async Task<IResult> ChainAsync(string name, ImageStore store, ImageChainResolver resolver, CancellationToken cancellationToken)
{
    if (!store.IsValidName(name) || store.Find(name) is not { } record)
    {
        return Results.NotFound();
    }

    // The format recorded when the image was accepted: a stored image is never probed again.
    TrustReport report = await resolver.CheckAsync(store.PathOf(name), ImageFormatNames.Parse(record.Format), cancellationToken);
    var body = new MemoryStream();
    TrustReportJson.Write(body, report, store.Names);
    return Results.Text(body.ToArray(), "application/json", StatusCodes.Status200OK);
}

static async Task<IResult> DomainDiskAsync(string name, string? target, ImageStore store, ImageChainResolver resolver, CancellationToken cancellationToken)
{
    if (!store.IsValidName(name) || store.Find(name) is not { } record)
    {
        return Results.NotFound();
    }

    TrustReport report = await resolver.CheckAsync(store.PathOf(name), ImageFormatNames.Parse(record.Format), cancellationToken);
    if (!LibvirtDiskXml.TryToXml(report, target ?? LibvirtDiskXml.DefaultTarget, out string? xml, out string? reason))
    {
        return Problem(StatusCodes.Status409Conflict, "No disk XML for this chain", store.Names.MapMessage(reason, report));
    }

    return Results.Text(xml, "application/xml", Encoding.UTF8, StatusCodes.Status200OK);
}

// The whole store, each image read as the format its sidecar records (never probed): a tenant's image accepted as raw
// names nothing, whatever header its guest wrote. Names are relative to the image root.
static async Task<IResult> ScanAsync(ImageStore store, ImageChainResolverOptions resolverOptions, CancellationToken cancellationToken)
{
    var scanner = new ImageStoreScanner(new ImageStoreScannerOptions { Policy = resolverOptions.Policy, MaxDepth = resolverOptions.MaxDepth, FormatCatalog = store });
    StoreGraph graph = await scanner.ScanGraphAsync(store.Root, cancellationToken: cancellationToken);
    var body = new MemoryStream();
    using (var writer = new Utf8JsonWriter(body, new JsonWriterOptions { Indented = true }))
    {
        writer.WriteStartObject();
        writer.WriteStartArray("images");
        foreach (StoreImage image in graph.Images)
        {
            writer.WriteStartObject();
            writer.WriteString("name", store.Names.Map(image.Path));
            writer.WritePropertyName("report");
            TrustReportJson.Write(writer, image.Report, store.Names);
            writer.WriteStartArray("used-by");
            foreach (StoreImage user in graph.GetDependents(image))
            {
                writer.WriteStringValue(store.Names.Map(user.Path));
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    return Results.Text(body.ToArray(), "application/json", StatusCodes.Status200OK);
}

static IResult Delete(string name, ImageStore store)
{
    if (!store.IsValidName(name) || store.Find(name) is null)
    {
        return Results.NotFound();
    }

    List<string> dependents = store.Dependents(name);
    if (dependents.Count > 0)
    {
        return Problem(StatusCodes.Status409Conflict, "Image in use", $"'{name}' is the backing image of {string.Join(", ", dependents)}.");
    }

    store.Delete(name);
    return Results.NoContent();
}

static async Task<IResult> DrainAsync(HttpContext context, ImageStore store, CancellationToken cancellationToken)
{
    if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
    {
        limit.MaxRequestBodySize = null;
    }

    string incoming = store.NewIncomingPath();
    try
    {
        await using var file = new FileStream(incoming, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        System.IO.Pipelines.PipeReader reader = context.Request.BodyReader;
        while (true)
        {
            System.IO.Pipelines.ReadResult result = await reader.ReadAsync(cancellationToken);
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                await file.WriteAsync(segment, cancellationToken);
            }

            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        await file.FlushAsync(cancellationToken);
        return Results.StatusCode(StatusCodes.Status201Created);
    }
    finally
    {
        File.Delete(incoming);
    }
}

static IResult Problem(int status, string title, string detail) =>
    Results.Problem(statusCode: status, title: title, detail: detail);

/// <summary>The entry point, public so that tests can host it with <c>WebApplicationFactory&lt;Program&gt;</c>.</summary>
public partial class Program;
