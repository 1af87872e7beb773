using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Tasks;
using BackingChain.Chain;
using BackingChain.Formats;
using BackingChain.Internal;
using BackingChain.Sources;
using BackingChain.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using BackingChain.Walk;

namespace BackingChain.Tests.Chain;

/// <summary>
/// Reading one layer (<see cref="LayerReader"/>): one path for every source, and every way a read or a reader can go
/// wrong contained as the layer's finding — the same whether it goes wrong at once or after the reader awaited.
/// </summary>
public sealed class LayerReaderTests
{
    public static TheoryData<string, bool> ReaderBugs => new()
    {
        { nameof(ArgumentException), false },
        { nameof(IndexOutOfRangeException), false },
        { nameof(OverflowException), true },
        { nameof(InvalidOperationException), true },
        { nameof(DivideByZeroException), false },
        { nameof(ArgumentOutOfRangeException), true },
    };

    [Theory]
    [MemberData(nameof(ReaderBugs))]
    public async Task A_reader_that_throws_on_bytes_it_did_not_validate_gives_a_malformed_header_finding_and_is_counted(string exception, bool afterAwait)
    {
        using var fixture = new Fixture(new ThrowingReader(Make(exception), afterAwait));
        using var source = new MemoryImageSource("hostile.img", new byte[8192]);

        LayerRead read = await fixture.Reader.ReadAsync(source, null, FormatSource.Probed, 0, CancellationToken.None);

        Assert.Null(read.Facts);
        Assert.Equal(ChainEnding.Malformed, read.Failure);
        ChainFinding finding = Assert.Single(fixture.Findings.ToImmutable());
        Assert.Equal(FindingCodes.MalformedHeader, finding.Code);
        Assert.Contains($"({exception})", finding.Message, StringComparison.Ordinal);
        Assert.Equal(finding.Message, read.Error);
        Assert.Equal(1, fixture.Reader.ReaderFaults);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_reader_that_cannot_read_the_image_gives_an_unreachable_image_finding_not_a_reader_fault(bool afterAwait)
    {
        using var fixture = new Fixture(new ThrowingReader(new IOException("Input/output error"), afterAwait));
        using var source = new MemoryImageSource("flaky.img", new byte[8192]);

        LayerRead read = await fixture.Reader.ReadAsync(source, null, FormatSource.Probed, 0, CancellationToken.None);

        Assert.Null(read.Facts);
        Assert.Equal(ChainEnding.Missing, read.Failure);
        Assert.Equal(FindingCodes.UnreachableImage, Assert.Single(fixture.Findings.ToImmutable()).Code);
        Assert.Equal(0, fixture.Reader.ReaderFaults);
    }

    [Theory]
    [InlineData(HeaderError.UnsupportedFeature, false, FindingCodes.UnsupportedFeature)]
    [InlineData(HeaderError.Inconsistent, true, FindingCodes.MalformedHeader)]
    public async Task A_reader_that_rejects_the_header_gives_its_own_finding_and_is_not_a_fault(HeaderError error, bool afterAwait, string code)
    {
        using var fixture = new Fixture(new ThrowingReader(new ImageFormatException(error, "bad header"), afterAwait));
        using var source = new MemoryImageSource("bad.img", new byte[8192]);

        LayerRead read = await fixture.Reader.ReadAsync(source, null, FormatSource.Probed, 0, CancellationToken.None);

        Assert.Equal(ChainEnding.Malformed, read.Failure);
        ChainFinding finding = Assert.Single(fixture.Findings.ToImmutable());
        Assert.Equal(code, finding.Code);
        Assert.EndsWith("bad header", finding.Message, StringComparison.Ordinal);
        Assert.Equal(0, fixture.Reader.ReaderFaults);
    }

    [Fact]
    public async Task An_exception_that_is_not_the_images_doing_is_not_swallowed()
    {
        using var fixture = new Fixture(new ThrowingReader(new KeyNotFoundException(), afterAwait: true));
        using var source = new MemoryImageSource("any.img", new byte[8192]);

        await Assert.ThrowsAsync<KeyNotFoundException>(async () => await fixture.Reader.ReadAsync(source, null, FormatSource.Probed, 0, CancellationToken.None));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_head_that_cannot_be_read_ends_the_walk_as_missing_before_any_reader_runs(bool afterAwait)
    {
        var reader = new ThrowingReader(new InvalidOperationException("must not run"), afterAwait: false);
        using var fixture = new Fixture(reader);
        using var source = new FailingSource(afterAwait);

        LayerRead read = await fixture.Reader.ReadAsync(source, ImageFormat.Qcow2, FormatSource.Declared, 0, CancellationToken.None);

        Assert.Equal(ChainEnding.Missing, read.Failure);
        ChainFinding finding = Assert.Single(fixture.Findings.ToImmutable());
        Assert.Equal(FindingCodes.UnreachableImage, finding.Code);
        Assert.StartsWith("Could not read 'failing.img': ", finding.Message, StringComparison.Ordinal);
        Assert.Equal(0, reader.Calls);
        Assert.Equal(0, fixture.Reader.ReaderFaults);
    }

    [QemuImgFact]
    public async Task A_local_file_is_read_without_awaiting_and_gives_the_facts_any_other_source_of_the_same_bytes_gives()
    {
        using var dir = new ScratchDirectory();
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "base.qcow2", "3M");
        QemuImg.Run(dir.Path, "create", "-q", "-f", "qcow2", "-u", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2", "5M");
        JsonNode oracle = QemuImg.Info(dir.Path, dir["top.qcow2"]);
        using var fixture = new Fixture(readers: null);

        using FileImageSource file = FileImageSource.Open(dir["top.qcow2"]);
        ValueTask<LayerRead> fromFile = fixture.Reader.ReadAsync(file, null, FormatSource.Probed, 0, CancellationToken.None);
        Assert.True(fromFile.IsCompletedSuccessfully, "a local qcow2 layer's read awaited");
        LayerRead local = await fromFile;

        using var slow = new YieldingSource(new MemoryImageSource(dir["top.qcow2"], File.ReadAllBytes(dir["top.qcow2"])));
        LayerRead remote = await fixture.Reader.ReadAsync(slow, null, FormatSource.Probed, 0, CancellationToken.None);

        foreach (LayerRead read in new[] { local, remote })
        {
            LayerFacts facts = Assert.NotNull(read.Facts);
            Assert.Equal((long)oracle["virtual-size"]!, facts.VirtualSize);
            Assert.Equal((string)oracle["backing-filename"]!, Assert.Single(facts.References).Name);
            Assert.Equal(ImageFormat.Qcow2, read.Used);
            Assert.Equal(ImageFormat.Qcow2, read.Probed);
            Assert.NotNull(read.Detection);
            Assert.False(read.Detection!.IsPolyglot);
        }

        Assert.Empty(fixture.Findings.ToImmutable());
    }

    private static Exception Make(string name) => name switch
    {
        nameof(ArgumentException) => new ArgumentException("bad"),
#pragma warning disable CA2201 // what a reader's array access throws, made here as the runtime would
        nameof(IndexOutOfRangeException) => new IndexOutOfRangeException(),
#pragma warning restore CA2201
        nameof(OverflowException) => new OverflowException(),
        nameof(InvalidOperationException) => new InvalidOperationException(),
        nameof(DivideByZeroException) => new DivideByZeroException(),
        nameof(ArgumentOutOfRangeException) => new ArgumentOutOfRangeException(nameof(name)),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    /// <summary>A walk's reader, with the findings and pending decisions it writes to.</summary>
    private sealed class Fixture : IDisposable, ILayerReferenceOpener
    {
        public Fixture(IImageFormatReader? readers)
        {
            Reader = readers is null
                ? new LayerReader(this, Findings, [], null, null, NullLogger.Instance)
                : new LayerReader(this, Findings, [], null, null, NullLogger.Instance, _ => readers);
        }

        public PooledList<ChainFinding> Findings { get; } = new();

        public LayerReader Reader { get; }

        public ValueTask<IImageSource?> OpenReferenceAsync(LayerReadContext context, StoredReference reference, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("no reader here asks for a file");

        public void Dispose()
        {
            Reader.Dispose();
            Findings.Dispose();
        }
    }

    /// <summary>A format reader with a bug: it throws, at once or after awaiting.</summary>
    private sealed class ThrowingReader(Exception exception, bool afterAwait) : IImageFormatReader
    {
        public int Calls { get; private set; }

        public ImageFormat Format => ImageFormat.Raw;

        public string QemuName => "raw";

        public string? LibvirtName => "raw";

        public bool QemuOpensBacking => false;

        public bool InfoComesFromProtocol => false;

        public ImmutableArray<SignatureRule> Signatures => [];

        public bool CanRecordBackingFormat(ImageFormat backingFormat) => false;

        public int Probe(ReadOnlySpan<byte> head, string? fileName) => 0;

        public ValueTask<LayerFacts> ReadAsync(LayerReadContext context, CancellationToken cancellationToken)
        {
            Calls++;
            return afterAwait ? ThrowLaterAsync() : throw exception;
        }

        private async ValueTask<LayerFacts> ThrowLaterAsync()
        {
            await Task.Yield();
            throw exception;
        }
    }

    /// <summary>A source whose reads fail, at once or after awaiting.</summary>
    private sealed class FailingSource(bool afterAwait) : IImageSource
    {
        public string Name => "failing.img";

        public long Length => 1 << 20;

        public long? AllocatedSize => null;

        public ImageSourceIdentity Identity => ImageSourceIdentity.ForKey("memory", Name);

        public ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            afterAwait ? FailLaterAsync() : throw new IOException("Input/output error");

        public void Dispose()
        {
        }

        private static async ValueTask<int> FailLaterAsync()
        {
            await Task.Yield();
            throw new IOException("Input/output error");
        }
    }

    /// <summary>Another source's bytes, each read completing only after the reader awaited (as over a network).</summary>
    private sealed class YieldingSource(IImageSource inner) : IImageSource
    {
        public string Name => inner.Name;

        public long Length => inner.Length;

        public long? AllocatedSize => inner.AllocatedSize;

        public ImageSourceIdentity Identity => inner.Identity;

        public async ValueTask<int> ReadAtAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Yield();
            return await inner.ReadAtAsync(offset, buffer, cancellationToken);
        }

        public void Dispose() => inner.Dispose();
    }
}
