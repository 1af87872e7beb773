using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using BackingChain.Chain;
using BackingChain.Tests.Infrastructure;
using BackingChain.Trust;
using BackingChain.Walk;

namespace BackingChain.Tests.Performance;

/// <summary>
/// A walk allocates only what the chain it returns keeps: on a 200-deep qcow2 chain from files, the bytes allocated
/// on the walking thread (<see cref="GC.GetAllocatedBytesForCurrentThread"/>) are compared with the bytes of the
/// objects the returned <see cref="ImageChain"/> holds that this walk made. Nothing is timed.
/// </summary>
/// <remarks>
/// How the bound is derived: the kept bytes are measured, not estimated. Every object reachable from the chain
/// (layers, references, decisions, names, format-specific records, the arrays holding them) is visited by
/// reflection; objects also reachable from a second walk's chain of the same files (string literals, the policy,
/// shared empty arrays) are not this walk's allocations and are left out; each remaining object's size is what the
/// runtime allocates for an object of its type and length, measured the same way. What the walk may allocate beyond
/// that is its own bookkeeping, made once per walk whatever the depth (the walk state, its pooled lists, the chain
/// object, the top image's source): <see cref="PerWalkBytes"/> for all of it, plus <see cref="SlackPerLayer"/> per
/// layer for nothing in particular, so one transient object per layer (a 24-byte object is the smallest) fails.
/// </remarks>
public sealed class ChainWalkAllocationTests
{
    private const int Depth = 200;

    /// <summary>Per-walk bookkeeping, measured at about 1.2 KB (the walk state, the reader context, the top's source), with room to spare.</summary>
    private const long PerWalkBytes = 2048;

    /// <summary>Less than the smallest object (24 bytes): any transient object per layer exceeds it.</summary>
    private const long SlackPerLayer = 16;

    [QemuImgFact]
    public void A_200_deep_walk_from_files_allocates_only_what_the_chain_keeps()
    {
        using var scratch = new ScratchDirectory();
        string top = MakeChain(scratch.Path, Depth);
        var resolver = new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible });

        ImageChain other = resolver.Resolve(top); // warm: JIT, pools, thread-local spares
        long before = GC.GetAllocatedBytesForCurrentThread();
        ImageChain chain = resolver.Resolve(top);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(ChainEnding.Complete, chain.Ending);
        Assert.Equal(Depth, chain.Layers.Length);
        long kept = KeptBytes(chain, other);
        long transient = allocated - kept;
        string measured = string.Create(CultureInfo.InvariantCulture, $"allocated {allocated} B ({allocated / Depth} per layer), kept {kept} B ({kept / Depth} per layer), transient {transient} B");
        Assert.True(kept > Depth * 100, "the kept-bytes measure found too little to be right: " + measured);
        Assert.True(transient <= PerWalkBytes + (SlackPerLayer * Depth), measured);
    }

    [QemuImgFact]
    public void The_200_deep_chain_the_allocation_test_walks_is_the_one_qemu_img_sees()
    {
        using var scratch = new ScratchDirectory();
        string top = MakeChain(scratch.Path, Depth);

        JsonArray oracle = QemuImg.Info(scratch.Path, top, backingChain: true).AsArray();
        ImageChain chain = new ImageChainResolver(new ImageChainResolverOptions { Policy = TrustPolicy.QemuCompatible }).Resolve(top);

        Assert.Equal(oracle.Count, chain.Layers.Length);
        for (int i = 0; i < oracle.Count; i++)
        {
            Assert.Equal((string)oracle[i]!["filename"]!, chain.Layers[i].FileName);
            Assert.Equal((string?)oracle[i]!["backing-filename"], chain.Layers[i].Backing?.StoredName);
        }
    }

    /// <summary>
    /// A chain of <paramref name="depth"/> qcow2 images: the base and one overlay made by qemu-img (the overlay names
    /// <c>layer000.qcow2</c> with <c>-F qcow2</c>), then each further layer a copy of that overlay with the stored
    /// name patched to the layer below (every name has the same length). Returns the top's path.
    /// </summary>
    private static string MakeChain(string directory, int depth)
    {
        QemuImg.Run(directory, "create", "-q", "-f", "qcow2", Name(0), "64M");
        QemuImg.Run(directory, "create", "-q", "-f", "qcow2", "-u", "-b", Name(0), "-F", "qcow2", Name(1), "64M");
        byte[] overlay = File.ReadAllBytes(Path.Combine(directory, Name(1)));
        int at = overlay.AsSpan().IndexOf(Encoding.ASCII.GetBytes(Name(0)));
        Assert.True(at > 0);
        for (int i = 2; i < depth; i++)
        {
            Encoding.ASCII.GetBytes(Name(i - 1)).CopyTo(overlay, at);
            File.WriteAllBytes(Path.Combine(directory, Name(i)), overlay);
        }

        return Path.Combine(directory, Name(depth - 1));
    }

    private static string Name(int layer) => string.Create(CultureInfo.InvariantCulture, $"layer{layer:D3}.qcow2");

    /// <summary>The bytes of the objects reachable from <paramref name="chain"/> and not from <paramref name="other"/>.</summary>
    private static long KeptBytes(ImageChain chain, ImageChain other)
    {
        var shared = new HashSet<object>(ReferenceEqualityComparer.Instance);
        Reach(other, shared, exclude: null);
        var mine = new HashSet<object>(ReferenceEqualityComparer.Instance);
        Reach(chain, mine, shared);
        long total = 0;
        foreach (object item in mine)
        {
            total += AllocationSize(item);
        }

        return total;
    }

    private static void Reach(object root, HashSet<object> seen, HashSet<object>? exclude)
    {
        var pending = new Stack<object>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            object item = pending.Pop();
            if (exclude?.Contains(item) == true || item is Type or MemberInfo or Delegate || !seen.Add(item))
            {
                continue;
            }

            if (item is Array array)
            {
                if (!array.GetType().GetElementType()!.IsPrimitive)
                {
                    foreach (object? element in (IEnumerable)array)
                    {
                        Children(element, pending);
                    }
                }

                continue;
            }

            FieldsOf(item, pending);
        }
    }

    /// <summary>Pushes a reference, or the references inside a value.</summary>
    private static void Children(object? value, Stack<object> pending)
    {
        if (value is null || value.GetType().IsPrimitive || value.GetType().IsEnum)
        {
            return;
        }

        if (value.GetType().IsValueType)
        {
            FieldsOf(value, pending);
        }
        else
        {
            pending.Push(value);
        }
    }

    private static void FieldsOf(object item, Stack<object> pending)
    {
        for (Type? type = item.GetType(); type is not null; type = type.BaseType)
        {
            foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (!field.FieldType.IsPointer && !field.FieldType.IsByRefLike)
                {
                    Children(field.GetValue(item), pending);
                }
            }
        }
    }

    /// <summary>What the runtime allocates for an object of <paramref name="item"/>'s type and length, measured.</summary>
    private static long AllocationSize(object item)
    {
        long smallest = long.MaxValue;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            object copy = item switch
            {
                string text => new string('x', text.Length),
                Array array => Array.CreateInstance(array.GetType().GetElementType()!, array.Length),
                _ => RuntimeHelpers.GetUninitializedObject(item.GetType()),
            };
            long size = GC.GetAllocatedBytesForCurrentThread() - before;
            GC.KeepAlive(copy);
            smallest = Math.Min(smallest, size);
        }

        return smallest;
    }
}
