#!/usr/bin/env bash
# Store scan against qemu-img (issue 12): generates a store of 10,000 images (qcow2 bases, overlays naming them by
# relative path, a few deep chains, raw disks, overlays without a recorded backing format, overlays whose base was
# deleted), then times, in the same run and over the same warm page cache,
#   backing-chain scan --trust-root STORE --output json STORE
# against
#   find STORE -type f | xargs -P "$(nproc)" -n 1 qemu-img info --backing-chain --output=json -U
# and records wall time and peak RSS from /usr/bin/time -v. Target (DESIGN.md): at least 100x faster, under 200 MB.
#
#   benchmarks/compare-scan.sh [OUTPUT.md]      (default: benchmarks/compare-scan.md)
#   BACKING_CHAIN=/path/to/backing-chain benchmarks/compare-scan.sh   (skip the NativeAOT publish)
#   SCAN_RUNS=5 (default) timed runs of the scan; the qemu-img side runs once (it takes minutes).
#
# Needs: dotnet (10.0 SDK) unless BACKING_CHAIN is set, qemu-img, python3, jq, GNU time (/usr/bin/time).
# Not part of dotnet test: it writes about 2 GB of sparse files (a few hundred MB on disk) and runs for minutes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
report=${1:-$here/compare-scan.md}
runs=${SCAN_RUNS:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/compare-scan.XXXXXX")
trap 'rm -rf "$work"' EXIT
for tool in qemu-img python3 jq /usr/bin/time; do
    command -v "$tool" > /dev/null || { echo "compare-scan: $tool is required" >&2; exit 1; }
done

# 1. The CLI: NativeAOT, as shipped (or the binary given).
if [ -n "${BACKING_CHAIN:-}" ]; then
    cli=$BACKING_CHAIN
else
    echo "Publishing backing-chain with NativeAOT..." >&2
    if ! dotnet publish "$repo/samples/BackingChain.Cli/BackingChain.Cli.csproj" -c Release -r linux-x64 \
            -p:PublishAot=true -p:EnableSourceLink=false -p:EnableSourceControlManagerQueries=false \
            -o "$work/aot" > "$work/publish.log" 2>&1; then
        cat "$work/publish.log" >&2
        exit 1
    fi
    cli="$work/aot/backing-chain"
fi

# 2. The store. Templates are made by qemu-img; copies of them fill the store (copying is what makes 10,000
#    images in seconds). Every overlay lives two directories below the store, so "../../bases/baseNN.qcow2"
#    resolves the same from each of them.
store=$work/store
echo "Generating the store..." >&2
mkdir -p "$store/bases" "$store/templates-tmp"
bases=20 deep_chains=5 deep_depth=40 raws=500 unrecorded=200 broken=50
total=10000
overlays=$((total - bases - deep_chains * deep_depth - raws - unrecorded - broken))
for ((b = 0; b < bases; b++)); do
    qemu-img create -q -f qcow2 "$(printf '%s/bases/base%02d.qcow2' "$store" "$b")" 10G
done
mkdir -p "$work/t/x/y"
(
    cd "$work/t/x/y"
    for ((b = 0; b < bases; b++)); do
        qemu-img create -q -f qcow2 -u -b "$(printf '../../bases/base%02d.qcow2' "$b")" -F qcow2 "$(printf 'ov%02d.qcow2' "$b")" 10G
    done
    # No recorded backing format: a v2 header whose backing-format extension (at 0x48) is cleared.
    qemu-img create -q -f qcow2 -o compat=0.10 -u -b ../../bases/base00.qcow2 -F qcow2 nofmt.qcow2 10G
    python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[0x48:0x50]=bytes(8); open(p,"wb").write(b)' nofmt.qcow2
    qemu-img create -q -f qcow2 -u -b ../../bases/deleted.qcow2 -F qcow2 broken.qcow2 10G
)
rmdir "$store/templates-tmp"
python3 - "$store" "$work/t/x/y" "$bases" "$overlays" "$raws" "$unrecorded" "$broken" <<'PY'
import os, sys
store, templates = sys.argv[1], sys.argv[2]
bases, overlays, raws, unrecorded, broken = map(int, sys.argv[3:])
def place(i, data, name):
    d = os.path.join(store, "vms", f"g{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
ov = [open(os.path.join(templates, f"ov{b:02d}.qcow2"), "rb").read() for b in range(bases)]
nofmt = open(os.path.join(templates, "nofmt.qcow2"), "rb").read()
brk = open(os.path.join(templates, "broken.qcow2"), "rb").read()
n = 0
for i in range(overlays):
    place(n, ov[i % bases], f"vm{n:05d}.qcow2"); n += 1
for i in range(unrecorded):
    place(n, nofmt, f"nofmt{n:05d}.qcow2"); n += 1
for i in range(broken):
    place(n, brk, f"broken{n:05d}.qcow2"); n += 1
for i in range(raws):
    d = os.path.join(store, "raw"); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"disk{i:04d}.raw"), "wb") as f:
        f.truncate(1 << 20)
PY
for ((c = 0; c < deep_chains; c++)); do
    dir=$store/deep/chain$c
    mkdir -p "$dir"
    (
        cd "$dir"
        qemu-img create -q -f qcow2 layer000.qcow2 1G
        for ((i = 1; i < deep_depth; i++)); do
            qemu-img create -q -f qcow2 -u -b "$(printf 'layer%03d.qcow2' $((i - 1)))" -F qcow2 "$(printf 'layer%03d.qcow2' "$i")" 1G
        done
    )
done
count=$(find "$store" -type f | wc -l)
[ "$count" -eq "$total" ] || { echo "compare-scan: made $count images, not $total" >&2; exit 1; }

# 3. Warm the page cache and check the scan's answer: every image seen, the broken ones broken.
"$cli" scan --trust-root "$store" --output json "$store" > "$work/scan.json" || true
seen=$(jq '.summary.images' "$work/scan.json")
seen_broken=$(jq '.summary.broken' "$work/scan.json")
seen_unrecorded=$(jq '.summary["unrecorded-backing-format"]' "$work/scan.json")
[ "$seen" -eq "$total" ] && [ "$seen_broken" -eq "$broken" ] && [ "$seen_unrecorded" -eq "$unrecorded" ] \
    || { echo "compare-scan: scan saw $seen images, $seen_broken broken, $seen_unrecorded unrecorded" >&2; exit 1; }

# 4. Timed: /usr/bin/time -v gives wall clock ("Elapsed") and peak RSS ("Maximum resident set size", KiB).
measure() { # label, then the command; prints "seconds kib"
    local out=$work/time-$1.txt
    shift
    /usr/bin/time -v "$@" > /dev/null 2> "$out" || true
    python3 - "$out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1).split(":")
seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(wall)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
print(f"{seconds:.3f} {rss}")
PY
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "Timing qemu-img over $total files (minutes)..." >&2
read -r qemu_s qemu_kib < <(measure qemu sh -c "find '$store' -type f | xargs -P \"\$(nproc)\" -n 1 qemu-img info --backing-chain --output=json -U")
scan_times=()
scan_kibs=()
for ((r = 0; r < runs; r++)); do
    read -r s kib < <(measure "scan$r" "$cli" scan --trust-root "$store" --output json "$store")
    scan_times+=("$s")
    scan_kibs+=("$kib")
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
read -r scan_med scan_min scan_kib_max < <(python3 - "${scan_times[*]}" "${scan_kibs[*]}" <<'PY'
import statistics, sys
t = [float(x) for x in sys.argv[1].split()]
k = [int(x) for x in sys.argv[2].split()]
print(f"{statistics.median(t):.3f} {min(t):.3f} {max(k)}")
PY
)
ratio_med=$(python3 -c "print(f'{$qemu_s / $scan_med:.0f}')")
ratio_min=$(python3 -c "print(f'{$qemu_s / $scan_min:.0f}')")

cat > "$report" <<MD
# Store scan vs qemu-img (generated by \`benchmarks/compare-scan.sh\`)

Run: $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPU(s) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),
$(uname -sr), $(qemu-img --version | head -1). Load average $load_before before, $load_after after: the machine was
shared with other engineers' builds, tests and a fuzzer, so absolute times are noisy; both tools ran in the same
run over the same warm page cache.

Store: $total files under one directory — $bases qcow2 bases, $overlays qcow2 overlays naming them by relative path
(\`../../bases/baseNN.qcow2\`, \`-F qcow2\`), $deep_chains chains of $deep_depth qcow2 layers, $raws raw disks,
$unrecorded overlays without a recorded backing format (v2 header, extension cleared), $broken overlays whose base
was deleted. The scan saw $seen images, $seen_broken broken, $seen_unrecorded without a backing format.

| Command | Wall time | Peak RSS |
|---------|-----------|----------|
| \`find STORE -type f \| xargs -P $(nproc) -n 1 qemu-img info --backing-chain --output=json -U\` | $qemu_s s (one run) | $((qemu_kib / 1024)) MiB (largest single process) |
| \`backing-chain scan --trust-root STORE --output json STORE\` (NativeAOT) | median $scan_med s, best $scan_min s ($runs runs) | $((scan_kib_max / 1024)) MiB (largest of the runs) |

Speed-up: ${ratio_med}× (median), ${ratio_min}× (best). Target: ≥ 100×, memory < 200 MB.

Scan runs (s): ${scan_times[*]}. Peak RSS per run (KiB): ${scan_kibs[*]}.

The scan judges every image under the policy (host posture, the store as trust root) and writes the whole graph as
JSON; qemu-img only prints each chain. Each qcow2 base is read once by the scan however many overlays use it.
MD
cat "$report"
