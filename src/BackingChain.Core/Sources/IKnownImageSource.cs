using System;

namespace BackingChain.Sources;

/// <summary>
/// What the walk may learn of the library's own sources beyond <see cref="IImageSource"/>. A caller's source has none
/// of it, and is read, shared and hashed on what <see cref="IImageSource"/> says alone: read asynchronously, never
/// shared between the walks of a store scan, taken for a regular file.
/// </summary>
internal interface IKnownImageSource
{
    /// <summary>Whether <see cref="ReadAt"/> reads (a local file's <c>pread</c>): a layer's head is then read without awaiting.</summary>
    bool ReadsSynchronously { get; }

    /// <summary>
    /// The change stamp that, with the identity and length, tells whether a read made earlier is still the source's
    /// (the layers a store scan shares); <see langword="null"/> when it is not known, and then no read is shared.
    /// </summary>
    long? ChangeStamp { get; }

    /// <summary>Whether what was opened is a device rather than a regular file: a device is never hashed for a pinned digest.</summary>
    bool IsDevice { get; }

    /// <summary>
    /// Whether the protocol under the image answers qemu's <c>bdrv_get_info</c>: qemu's curl driver does not, so for
    /// a format whose info comes from the protocol (raw, luks) qemu-img prints no <c>dirty-flag</c> over http.
    /// </summary>
    bool ProtocolAnswersGetInfo { get; }

    /// <summary>Reads synchronously from <paramref name="offset"/>, looping over short reads; only when <see cref="ReadsSynchronously"/>.</summary>
    /// <param name="offset">The position.</param>
    /// <param name="buffer">Where to put the bytes.</param>
    /// <returns>The bytes read; less than asked only at the end of the image.</returns>
    int ReadAt(long offset, Span<byte> buffer);
}
