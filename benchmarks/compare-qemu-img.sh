#!/usr/bin/env bash
# Side by side with qemu-img (issue 4): publishes the backing-chain CLI with NativeAOT, makes qcow2 chains
# of depth 1, 10, 100 and 200 with qemu-img, checks that both tools print the same JSON for each, and
# times them in the same run with hyperfine. Also times the C floor (open + pread 4 KiB + close per layer).
# Targets (docs/design.md): at least as fast as qemu-img at depth 1, at least 10x faster at depth 200.
#
#   benchmarks/compare-qemu-img.sh [OUTPUT.md]     (default: benchmarks/compare-qemu-img.md)
#
# Needs: dotnet (10.0 SDK), qemu-img, hyperfine, jq, cc. Installs hyperfine from Debian when it is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
report=${1:-$here/compare-qemu-img.md}
depths=(1 10 100 200)
work=$(mktemp -d "${TMPDIR:-/tmp}/compare-qemu-img.XXXXXX")
trap 'rm -rf "$work"' EXIT

if ! command -v hyperfine > /dev/null; then
    apt-get install -y hyperfine > /dev/null
fi
for tool in dotnet qemu-img hyperfine jq cc; do
    command -v "$tool" > /dev/null || { echo "compare-qemu-img: $tool is required" >&2; exit 1; }
done

# 1. NativeAOT publish; any warning (trimming, AOT analysis, compiler, MSBuild) fails the comparison.
#    Source Link is off: it only stamps repository URLs into the binary, and it warns in clones whose
#    remote is a local path.
echo "Publishing backing-chain with NativeAOT..." >&2
publish_log="$work/publish.log"
if ! dotnet publish "$repo/samples/BackingChain.Cli/BackingChain.Cli.csproj" -c Release -r linux-x64 \
        -p:PublishAot=true -p:EnableSourceLink=false -p:EnableSourceControlManagerQueries=false \
        -o "$work/aot" > "$publish_log" 2>&1; then
    cat "$publish_log" >&2
    exit 1
fi
if grep -iE '(^|: )warning' "$publish_log" > "$work/warnings.txt"; then
    sort -u "$work/warnings.txt" >&2
    echo "compare-qemu-img: the NativeAOT publish has warnings" >&2
    exit 1
fi
cli="$work/aot/backing-chain"

# 2. Chains: layer000.qcow2 is the base; each layer above records the one below by relative name, -F qcow2.
make_chain() {
    local depth=$1 dir=$work/chain-$1
    mkdir -p "$dir"
    (
        cd "$dir"
        qemu-img create -q -f qcow2 layer000.qcow2 64M
        for ((i = 1; i < depth; i++)); do
            qemu-img create -q -f qcow2 -u -b "$(printf 'layer%03d.qcow2' $((i - 1)))" -F qcow2 \
                "$(printf 'layer%03d.qcow2' "$i")" 64M
        done
    )
    printf '%s/layer%03d.qcow2' "$dir" $((depth - 1))
}

# 3. The C floor for the same files, best and median nanoseconds per layer: bare open+pread+close, and the
#    system calls the library makes per layer (stat, open, fstat, flock, pread, close).
cc -O2 -o "$work/open-pread-close" "$here/baseline/open-pread-close.c"

{
    echo "# backing-chain (NativeAOT) vs qemu-img info --backing-chain"
    echo
    echo "Made by \`benchmarks/compare-qemu-img.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "- Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $(uname -sr)"
    echo "- Load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other engineers' builds share these CPUs)"
    echo "- $(qemu-img --version | head -1); hyperfine $(hyperfine --version | cut -d' ' -f2); .NET SDK $(dotnet --version)"
    echo "- NativeAOT publish: 0 warnings; binary $(du -k "$cli" | cut -f1) KiB"
    echo "- Chains: qcow2 overlays made with \`qemu-img create -f qcow2 -b layer(N-1).qcow2 -F qcow2\`, 64 MiB, relative backing names; warm page cache (hyperfine warm-up runs)"
    echo
    echo "| Depth | backing-chain mean ± σ (ms) | qemu-img mean ± σ (ms) | qemu-img / backing-chain | Same JSON | C open+pread+close per layer, best / median (µs) | C, the library's calls per layer, best / median (µs) |"
    echo "|------:|----------------------------:|-----------------------:|-------------------------:|:---------:|------------------------------------------------:|-----------------------------------------------------:|"
} > "$work/report.md"

status=0
for depth in "${depths[@]}"; do
    echo "Depth $depth..." >&2
    top=$(make_chain "$depth")

    # Both outputs must agree (key order aside).
    qemu-img info --backing-chain --output=json "$top" | jq -S . > "$work/qemu-$depth.json"
    "$cli" info --backing-chain --output json "$top" | jq -S . > "$work/ours-$depth.json"
    if diff -u "$work/qemu-$depth.json" "$work/ours-$depth.json" > "$work/diff-$depth.txt"; then
        same=yes
    else
        same=NO
        status=1
        head -40 "$work/diff-$depth.txt" >&2
    fi
    layers=$(jq length "$work/ours-$depth.json")
    [ "$layers" -eq "$depth" ] || { echo "compare-qemu-img: expected $depth layers, got $layers" >&2; status=1; }

    runs=$((depth >= 100 ? 30 : 100))
    hyperfine -N --warmup 5 --runs "$runs" --style none --export-json "$work/time-$depth.json" \
        -n backing-chain "$cli info --backing-chain --output json $top" \
        -n qemu-img "qemu-img info --backing-chain --output=json $top" > /dev/null

    ours=$(jq '.results[] | select(.command == "backing-chain") | [.mean, .stddev]' -c "$work/time-$depth.json")
    theirs=$(jq '.results[] | select(.command == "qemu-img") | [.mean, .stddev]' -c "$work/time-$depth.json")
    mapfile -t layer_files < <(ls "$work/chain-$depth"/layer*.qcow2)
    read -r floor_best floor_median < <("$work/open-pread-close" "${layer_files[@]}")
    read -r lib_best lib_median < <("$work/open-pread-close" --as-library "${layer_files[@]}")
    jq -rn --argjson o "$ours" --argjson q "$theirs" --arg d "$depth" --arg s "$same" \
        --arg fb "$floor_best" --arg fm "$floor_median" --arg lb "$lib_best" --arg lm "$lib_median" \
        '"| \($d) | \($o[0]*1000*100|round/100) ± \($o[1]*1000*100|round/100) | \($q[0]*1000*100|round/100) ± \($q[1]*1000*100|round/100) | **\($q[0]/$o[0]*10|round/10)×** | \($s) | \($fb|tonumber/10|round/100) / \($fm|tonumber/10|round/100) | \($lb|tonumber/10|round/100) / \($lm|tonumber/10|round/100) |"' \
        >> "$work/report.md"
done

{
    echo
    echo "Targets: at least as fast as qemu-img at depth 1 (ratio ≥ 1), at least 10× faster at depth 200."
    echo "\"Same JSON\": \`jq -S\` of both outputs compared with \`diff\`."
} >> "$work/report.md"

cp "$work/report.md" "$report"
cat "$report"
exit "$status"
