using System;
using System.Buffers;

namespace BackingChain.Walk;

/// <summary>
/// The identities a walk has visited (loop detection): an open-addressing table in arrays rented from the shared
/// pool, so a deep walk does not leave a trail of outgrown hash-set arrays behind it.
/// </summary>
internal sealed class IdentitySet : IDisposable
{
    private ImageSourceIdentity[] _items = [];
    private int[] _slots = []; // index into _items plus one; 0 is free. Only the first _mask + 1 are used.
    private int _mask = -1;
    private int _count;

    /// <summary>Adds <paramref name="identity"/>; false when it was there already.</summary>
    public bool Add(ImageSourceIdentity identity)
    {
        if (_count * 2 >= _mask + 1)
        {
            Grow();
        }

        for (int slot = identity.GetHashCode() & _mask; ; slot = (slot + 1) & _mask)
        {
            int entry = _slots[slot];
            if (entry == 0)
            {
                _items[_count] = identity;
                _slots[slot] = ++_count;
                return true;
            }

            if (_items[entry - 1].Equals(identity))
            {
                return false;
            }
        }
    }

    public void Dispose()
    {
        Release();
        _items = [];
        _slots = [];
        _mask = -1;
        _count = 0;
    }

    private void Grow()
    {
        int size = Math.Max(16, (_mask + 1) * 2);
        ImageSourceIdentity[] items = ArrayPool<ImageSourceIdentity>.Shared.Rent(size / 2);
        int[] slots = ArrayPool<int>.Shared.Rent(size);
        int mask = size - 1;
        slots.AsSpan(0, size).Clear();
        _items.AsSpan(0, _count).CopyTo(items);
        for (int i = 0; i < _count; i++)
        {
            int slot = items[i].GetHashCode() & mask;
            while (slots[slot] != 0)
            {
                slot = (slot + 1) & mask;
            }

            slots[slot] = i + 1;
        }

        Release();
        _items = items;
        _slots = slots;
        _mask = mask;
    }

    private void Release()
    {
        if (_slots.Length > 0)
        {
            ArrayPool<ImageSourceIdentity>.Shared.Return(_items, clearArray: true);
            ArrayPool<int>.Shared.Return(_slots);
        }
    }
}
