using System.IO;
using System.Text.Json;
using BackingChain.Interop;
using BackingChain.Streaming;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace ProvisioningGate;

/// <summary>
/// A refused upload as problem details through the app's <see cref="IProblemDetailsService"/> (its <c>traceId</c>,
/// its customisations, <c>application/problem+json</c>), with the library's members and names relative to the store.
/// </summary>
public static class TenantProblems
{
    /// <summary>The problem of a refused upload.</summary>
    /// <param name="inspection">The rejected upload's inspection.</param>
    /// <param name="instance">The request path.</param>
    /// <param name="names">How names are shown to the tenant.</param>
    /// <returns>The result: written by the app's problem details service when it has one, else as plain problem JSON.</returns>
    public static IResult Rejected(UploadInspection inspection, string instance, ImageNameMapping names)
    {
        // The library writes the members (type, title, detail, reason, format, findings); they are carried over as they
        // are, so a client sees the same document whichever writer the app uses.
        var buffer = new MemoryStream();
        UploadProblemDetails.Write(buffer, inspection, instance, names);
        using JsonDocument document = JsonDocument.Parse(buffer.ToArray());
        var problem = new ProblemDetails();
        foreach (JsonProperty member in document.RootElement.EnumerateObject())
        {
            switch (member.Name)
            {
                case "type":
                    problem.Type = member.Value.GetString();
                    break;
                case "title":
                    problem.Title = member.Value.GetString();
                    break;
                case "status":
                    problem.Status = member.Value.GetInt32();
                    break;
                case "detail":
                    problem.Detail = member.Value.GetString();
                    break;
                case "instance":
                    problem.Instance = member.Value.GetString();
                    break;
                default:
                    problem.Extensions[member.Name] = member.Value.Clone();
                    break;
            }
        }

        // Results.Problem hands the problem to IProblemDetailsService when the app registered one (AddProblemDetails).
        return Results.Problem(problem);
    }
}
