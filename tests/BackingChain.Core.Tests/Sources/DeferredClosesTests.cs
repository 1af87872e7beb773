using System;
using System.Collections.Generic;
using System.IO;
using BackingChain.Internal;
using BackingChain.Tests.Infrastructure;

namespace BackingChain.Tests.Sources;

/// <summary>
/// A walk closes the descriptors of the layers it has read a batch at a time, with one <c>close_range</c> per run of
/// consecutive numbers: it must close every descriptor it was given and nothing else, with or without that call.
/// </summary>
public sealed class DeferredClosesTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Closes_exactly_the_descriptors_it_was_given_in_runs_and_alone(bool withoutCloseRange)
    {
        using var scratch = new ScratchDirectory();
        bool before = UnixFile.CloseRangeDisabled;
        UnixFile.CloseRangeDisabled = withoutCloseRange;
        var descriptors = new List<int>();
        try
        {
            for (int i = 0; i < 12; i++)
            {
                File.WriteAllBytes(scratch[$"f{i}"], [(byte)i]);
                Assert.Equal(UnixOpenResult.Opened, UnixFile.TryOpenDescriptor(scratch[$"f{i}"], out int fd, out _, out _));
                descriptors.Add(fd);
            }

            // Given: a run of five, two alone, and a run of two, out of order; kept: every third one.
            var batch = new DeferredCloses();
            int[] given = [descriptors[10], descriptors[0], descriptors[1], descriptors[2], descriptors[3], descriptors[4], descriptors[6], descriptors[8], descriptors[9]];
            foreach (int fd in given)
            {
                batch.Add(fd);
            }

            Assert.Equal(given.Length, batch.Count);
            batch.CloseAll();

            Assert.Equal(0, batch.Count);
            for (int i = 0; i < descriptors.Count; i++)
            {
                // A closed number may already be another test's descriptor: what matters is that it is not ours.
                bool stillOurs = UnixFile.DescriptorPath(descriptors[i]) == scratch[$"f{i}"];
                Assert.True(stillOurs == (Array.IndexOf(given, descriptors[i]) < 0), $"f{i} (descriptor {descriptors[i]}) open: {stillOurs}");
            }
        }
        finally
        {
            UnixFile.CloseRangeDisabled = before;
            foreach (int fd in descriptors)
            {
                if (UnixFile.DescriptorPath(fd) is { } path && path.StartsWith(scratch.Path, StringComparison.Ordinal))
                {
                    UnixFile.Close(fd);
                }
            }
        }
    }

    [Fact]
    public void Closes_the_batch_when_it_is_full_and_never_holds_more()
    {
        using var scratch = new ScratchDirectory();
        File.WriteAllBytes(scratch["f"], [1]);
        var batch = new DeferredCloses();
        var held = new List<int>();
        for (int i = 0; i < DeferredCloses.Capacity; i++)
        {
            Assert.Equal(UnixOpenResult.Opened, UnixFile.TryOpenDescriptor(scratch["f"], out int fd, out _, out _));
            held.Add(fd);
            batch.Add(fd);
            Assert.Equal((i + 1) % DeferredCloses.Capacity, batch.Count);
        }

        foreach (int fd in held)
        {
            Assert.NotEqual(scratch["f"], UnixFile.DescriptorPath(fd));
        }
    }
}
