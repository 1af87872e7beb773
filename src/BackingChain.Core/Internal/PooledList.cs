using System;
using System.Buffers;
using System.Collections.Immutable;
using System.Runtime.InteropServices;

namespace BackingChain.Internal;

/// <summary>
/// A list that grows in arrays rented from the shared pool and hands them back on <see cref="Dispose"/>: a walk
/// collects its layers and decisions here, so a deep chain leaves behind only the exact arrays its result keeps
/// (<see cref="ToImmutable"/>), not every array the list outgrew.
/// </summary>
internal sealed class PooledList<T> : IDisposable
{
    private const int FirstCapacity = 8;
    private T[] _items = [];

    public int Count { get; private set; }

    public T this[int index] => (uint)index < (uint)Count ? _items[index] : throw new ArgumentOutOfRangeException(nameof(index));

    public void Add(T item)
    {
        if (Count == _items.Length)
        {
            Grow();
        }

        _items[Count++] = item;
    }

    public void AddRange(ReadOnlySpan<T> items)
    {
        foreach (T item in items)
        {
            Add(item);
        }
    }

    /// <summary>The items, in an array of their own.</summary>
    public ImmutableArray<T> ToImmutable() =>
        Count == 0 ? ImmutableArray<T>.Empty : ImmutableCollectionsMarshal.AsImmutableArray(_items.AsSpan(0, Count).ToArray());

    public void Dispose()
    {
        Release();
        _items = [];
        Count = 0;
    }

    private void Grow()
    {
        T[] larger = ArrayPool<T>.Shared.Rent(Math.Max(FirstCapacity, _items.Length * 2));
        _items.AsSpan(0, Count).CopyTo(larger);
        Release();
        _items = larger;
    }

    private void Release()
    {
        if (_items.Length > 0)
        {
            // Cleared, so the pool does not keep a walk's layers alive.
            ArrayPool<T>.Shared.Return(_items, clearArray: true);
        }
    }
}
