using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using BackingChain.Formats.Vmdk;

namespace BackingChain.Tests.Formats;

/// <summary>
/// The extent walk skips ahead to line starts that can lead to "RW"; it must yield exactly the extents (and the
/// same error and error line) as the walk that visited every line. Random texts built from the tokens that
/// matter (whitespace of every kind, "RW" inside and outside words, types, quotes, numbers) cover the corners.
/// </summary>
public sealed class VmdkExtentEnumeratorEquivalenceTests
{
    private static readonly string[] Tokens =
    [
        "RW", "RW", "RW ", " ", " ", "\n", "\n", "\r\n", "\t", "\v", "\f", "R", "W", "RWX", "xRW", "#",
        "FLAT", "SPARSE", "VMFS", "VMFSSPARSE", "SESPARSE", "ZERO", "\"f.vmdk\"", "\"", "2048", "0", "-1",
        "+5", "ddb.x = \"1\"", "RW 2048 FLAT \"a.vmdk\" 0\n", "RW 16 SPARSE \"s.vmdk\"\n", "RDONLY 1 FLAT \"r\" 0\n",
    ];

    [Fact]
    public void Skipping_ahead_yields_what_the_line_by_line_walk_yields()
    {
        var random = new Random(5);
        var builder = new StringBuilder();
        for (int round = 0; round < 20000; round++)
        {
            builder.Clear();
            int count = random.Next(0, 24);
            for (int t = 0; t < count; t++)
            {
                builder.Append(Tokens[random.Next(Tokens.Length)]);
            }

            byte[] text = Encoding.ASCII.GetBytes(builder.ToString());
            AssertSameWalk(text);
        }
    }

    [Theory]
    [InlineData("RW 1 FLAT \"a\" 0")]
    [InlineData("\n\n  RW 1 FLAT \"a\" 0\n")]
    [InlineData("x RW 1 FLAT \"a\" 0\nRW 2 FLAT \"b\" 0")]
    [InlineData("x \n \nRW 1 FLAT \"a\" 0\n")]
    [InlineData("RWRW 1 FLAT \"a\" 0\nRW 1 VMFS \"b\" 7\n")]
    [InlineData("RW 1 FLAT \"a\"\n")]
    [InlineData("RW")]
    public void Corner_cases_match(string text) => AssertSameWalk(Encoding.ASCII.GetBytes(text));

    private static void AssertSameWalk(byte[] text)
    {
        var expected = new List<VmdkExtentLine>();
        var reference = new ReferenceVmdkExtentEnumerator(text);
        while (reference.MoveNext())
        {
            expected.Add(reference.Current);
        }

        var actual = new List<VmdkExtentLine>();
        VmdkExtentEnumerator walk = VmdkDescriptor.EnumerateExtents(text);
        while (walk.MoveNext())
        {
            actual.Add(walk.Current);
        }

        string shown = Encoding.ASCII.GetString(text);
        Assert.True(expected.SequenceEqual(actual), shown);
        Assert.Equal(reference.Error, walk.Error);
        Assert.Equal(reference.ErrorLine, walk.ErrorLine);
    }
}
