using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Formats;
using BackingChain.Sources;

namespace BackingChain.Tests.Formats;

/// <summary>Runs one format reader on files of a scratch directory, as the resolver would, counting side opens.</summary>
internal static class HostileInputTestSupport
{
    /// <summary>Reads <paramref name="path"/> as <paramref name="format"/>; the reader's typed error comes back as failed facts.</summary>
    public static async Task<(LayerFacts Facts, int Opens)> ReadAsync(ImageFormat format, string path)
    {
        using FileImageSource source = FileImageSource.Open(path);
        byte[] head = new byte[(int)Math.Min(source.Length, ImageReadLimits.HeadLength)];
        int read = await source.ReadAtAsync(0, head);
        int opens = 0;
        var opened = new List<IImageSource>();
        string directory = Path.GetDirectoryName(path)!;
        var context = new LayerReadContext(source, head.AsMemory(0, read), (stored, _) =>
        {
            opens++;
            string target = Path.Combine(directory, stored.Name);
            IImageSource? side = File.Exists(target) ? FileImageSource.Open(target) : null;
            if (side is not null)
            {
                opened.Add(side);
            }

            return new ValueTask<IImageSource?>(side);
        });
        try
        {
            LayerFacts facts = await FormatReaders.Get(format)!.ReadAsync(context, CancellationToken.None);
            return (facts, opens);
        }
        catch (ImageFormatException ex)
        {
            return (LayerFacts.Failed(ex.Error, ex.Message), opens);
        }
        finally
        {
            foreach (IImageSource side in opened)
            {
                side.Dispose();
            }
        }
    }
}
