using System.Collections.Generic;
using System.Text.Json.Serialization;

namespace ProvisioningGate;

/// <summary>
/// The sidecar of a stored image: the format it was accepted as — used for every later read, so a stored image is
/// never probed again — and the absolute paths of the files it names, to refuse deleting a base still in use.
/// </summary>
/// <param name="Format">qemu's name of the format the upload was accepted as.</param>
/// <param name="Length">The image's length in bytes.</param>
/// <param name="References">The absolute paths of the files the image names.</param>
public sealed record StoredImage(string Format, long Length, List<string> References);

/// <summary>Source-generated JSON for the sidecar: no reflection, stable kebab-case names.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.KebabCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(StoredImage))]
internal sealed partial class StoredImageJson : JsonSerializerContext;
