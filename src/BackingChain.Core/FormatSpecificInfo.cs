using System.Text.Json;

namespace BackingChain;

/// <summary>
/// Facts particular to one format, as qemu reports them under <c>format-specific</c>. The concrete types
/// live with their formats (for example <see cref="Formats.Qcow2.Qcow2FormatInfo"/>).
/// </summary>
public abstract class FormatSpecificInfo
{
    /// <summary>Initializes the base. Only the library's formats derive from this class.</summary>
    private protected FormatSpecificInfo()
    {
    }

    /// <summary>The kind name qemu prints as <c>format-specific.type</c> (<c>"qcow2"</c>, <c>"vmdk"</c>, <c>"luks"</c>).</summary>
    public abstract string Kind { get; }

    /// <summary>Writes the members of qemu's <c>format-specific.data</c> object (7.2 names) into an open object.</summary>
    internal abstract void WriteQemuData(Utf8JsonWriter writer);
}
