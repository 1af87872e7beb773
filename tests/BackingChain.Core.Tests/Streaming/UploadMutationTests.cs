using System;
using System.IO;
using System.Threading.Tasks;
using BackingChain.Streaming;
using BackingChain.Tests.Infrastructure;
using static BackingChain.Tests.Streaming.UploadTestHelpers;

namespace BackingChain.Tests.Streaming;

/// <summary>
/// Hostile uploads: qemu-img images with random bytes changed in their metadata. Whatever the bytes, the gate
/// returns a verdict (never an exception) and the same one for every segmentation.
/// </summary>
public sealed class UploadMutationTests
{
    [QemuImgTheory]
    [InlineData("qcow2", "lazy_refcounts=on", 11)]
    [InlineData("qcow2", "data_file=data.raw", 12)]
    [InlineData("qcow", "", 13)]
    [InlineData("qed", "", 14)]
    [InlineData("vmdk", "", 15)]
    [InlineData("vmdk", "subformat=streamOptimized", 16)]
    public async Task Inspect_mutated_headers_always_give_the_same_verdict_and_never_throw(string format, string createOptions, int seed)
    {
        Assert.True(ImageFormatNames.TryParse(format, out ImageFormat imageFormat));

        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "raw", "base.raw", "1M");
        var create = new System.Collections.Generic.List<string> { "create", "-q", "-f", format };
        if (createOptions.Length > 0)
        {
            create.AddRange(["-o", createOptions]);
        }

        if (format is "qcow2" or "qcow" or "qed")
        {
            create.AddRange(["-b", "base.raw", "-F", "raw"]);
        }

        create.AddRange(["image", "1M"]);
        QemuImg.Run(dir.Path, [.. create]);
        byte[] original = File.ReadAllBytes(dir["image"]);

        var random = new Random(seed);
        for (int round = 0; round < 150; round++)
        {
            byte[] image = (byte[])original.Clone();
            int changes = random.Next(1, 9);
            for (int i = 0; i < changes; i++)
            {
                // Mostly the header sector, sometimes the rest of the first 64 KiB, sometimes the tail.
                int where = random.Next(10) switch
                {
                    < 6 => random.Next(Math.Min(512, image.Length)),
                    < 9 => random.Next(Math.Min(64 * 1024, image.Length)),
                    _ => image.Length - 1 - random.Next(Math.Min(1536, image.Length)),
                };
                image[where] = (byte)random.Next(256);
            }

            UploadInspectionOptions options = random.Next(2) == 0
                ? UploadInspectionOptions.Default
                : new UploadInspectionOptions { DeclaredFormat = imageFormat, HeadWindowLength = random.Next(512, 128 * 1024), TailWindowLength = random.Next(0, 8192) };
            UploadInspection pages = await InspectAsync(image, 4096, options);
            UploadInspection large = await InspectAsync(image, 1024 * 1024, options);
            ReaderFault.AssertNone(pages);
            ReaderFault.AssertNone(large);
            Assert.Equal(Describe(pages), Describe(large));
            if (round < 10)
            {
                Assert.Equal(Describe(pages), Describe(await InspectAsync(image, 7, options)));
            }
        }
    }
}
