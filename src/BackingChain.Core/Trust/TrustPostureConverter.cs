using System;
using System.ComponentModel;
using System.Globalization;

namespace BackingChain.Trust;

/// <summary>
/// Converts a posture from text as the reports spell it (<c>host</c>, <c>untrusted-image</c>) or as the enum names it
/// (<c>UntrustedImage</c>), in any case. The configuration binder converts an enum through its type converter, and
/// the default one knows only member names, so <c>"Posture": "untrusted-image"</c> failed to bind a
/// <see cref="TrustPolicy"/>.
/// </summary>
internal sealed class TrustPostureConverter : EnumConverter
{
    public TrustPostureConverter()
        : base(typeof(TrustPosture))
    {
    }

    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value) =>
        value is string text
            ? TryParse(text, out TrustPosture posture) ? posture : throw new FormatException(ParseError(text))
            : base.ConvertFrom(context, culture, value);

    public override object? ConvertTo(ITypeDescriptorContext? context, CultureInfo? culture, object? value, Type destinationType) =>
        value is TrustPosture posture && destinationType == typeof(string) ? posture.GetStableName() : base.ConvertTo(context, culture, value, destinationType);

    /// <summary>Reads a posture's name: the stable name or the member name, in any case, blanks around it ignored. Numbers are refused: a posture is a security choice, and "1" says nothing about which one was meant.</summary>
    internal static bool TryParse(string? text, out TrustPosture posture)
    {
        string name = text?.Trim() ?? "";
        if (name.Equals("host", StringComparison.OrdinalIgnoreCase))
        {
            posture = TrustPosture.Host;
            return true;
        }

        posture = TrustPosture.UntrustedImage;
        return name.Equals("untrusted-image", StringComparison.OrdinalIgnoreCase) || name.Equals(nameof(TrustPosture.UntrustedImage), StringComparison.OrdinalIgnoreCase);
    }

    internal static string ParseError(string? text) => $"'{text}' is not a posture; use \"host\" or \"untrusted-image\".";
}
