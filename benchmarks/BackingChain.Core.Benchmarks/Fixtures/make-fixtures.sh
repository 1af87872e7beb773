#!/bin/sh
# Regenerates the header fixtures the parse and probe benchmarks read (qemu-img 7.2 from Debian 12).
# Only each image's first 4 KiB is kept: every header these benchmarks parse lies inside it, and the
# fixtures stay small enough to commit. Run from this directory: ./make-fixtures.sh
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# qcow2 v3 (compat 1.1) with a backing file name, the backing-format extension and the feature name
# table extension, as an overlay made by "qemu-img create -b ... -F ..." has them.
qemu-img create -q -f raw "$work/base.raw" 64M
qemu-img create -q -f qcow2 -o compat=1.1 -b "$work/base.raw" -F raw "$work/overlay.qcow2" 64M
# Record a relative backing name, the common case (qemu-img rebase -u writes only the header).
qemu-img rebase -q -u -f qcow2 -b base.raw -F raw "$work/overlay.qcow2"
head -c 4096 "$work/overlay.qcow2" > qcow2-v3.head

# qcow (version 1) overlay: its header holds the backing name (qcow1 records no backing format).
qemu-img create -q -f qcow -b base.raw -F raw "$work/overlay.qcow" 64M
head -c 4096 "$work/overlay.qcow" > qcow1.head

# QED overlay with a backing name and the "backing format is raw, do not probe" feature (-F raw).
qemu-img create -q -f qed -b base.raw -F raw "$work/overlay.qed" 64M
head -c 4096 "$work/overlay.qed" > qed.head

# VMDK monolithicSparse (KDMV header; the embedded descriptor follows at sector 1).
qemu-img create -q -f vmdk "$work/disk.vmdk" 64M
head -c 4096 "$work/disk.vmdk" > vmdk-sparse.head

# VMDK monolithicFlat: a text descriptor naming one flat extent (the whole descriptor file).
qemu-img create -q -f vmdk -o subformat=monolithicFlat "$work/flat.vmdk" 1M
cp "$work/flat.vmdk" vmdk-desc.head

# Parallels (WithouFreeSpacExt header).
qemu-img create -q -f parallels "$work/disk.hds" 64M
head -c 4096 "$work/disk.hds" > parallels.head

# VDI (VirtualBox): pre-header, header v1.1 (the whole 1 KiB file).
qemu-img create -q -f vdi "$work/disk.vdi" 64M
head -c 4096 "$work/disk.vdi" > vdi.head

# VHD (qemu's vpc driver), dynamic: footer copy at 0, dynamic header at 512 (the whole 2.5 KiB file).
qemu-img create -q -f vpc "$work/disk.vhd" 64M
head -c 4096 "$work/disk.vhd" > vhd-dynamic.head

# VHDX: the file identifier (what the probe sees) and the first header block at 64 KiB (what is parsed;
# not a .head file, so the probe benchmark does not pick it up).
qemu-img create -q -f vhdx "$work/disk.vhdx" 64M
head -c 4096 "$work/disk.vhdx" > vhdx.head
dd if="$work/disk.vhdx" of=vhdx-header1.bin bs=4096 skip=16 count=1 status=none

# LUKS1 (the container qcow2's LUKS encryption also uses). qemu calibrates PBKDF2 against CPU time and
# gives up ("Unable to get accurate CPU usage") on a busy machine, so try a few times.
for attempt in 1 2 3 4 5; do
    qemu-img create -q -f luks --object secret,id=sec0,data=benchmark \
        -o key-secret=sec0,iter-time=100 "$work/disk.luks" 1M && break
    [ "$attempt" -lt 5 ] || exit 1
done
head -c 4096 "$work/disk.luks" > luks1.head

# Raw: what the probe sees when no format matches (a zero-filled first sector).
head -c 4096 /dev/zero > raw.head
