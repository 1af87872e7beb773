#!/usr/bin/env bash
# The upload gate against the pipe floor (issue 11): the ProvisioningGate sample (Release, Kestrel on 127.0.0.1)
# takes a PUT of an image made by qemu-img, judges it as it streams and writes it to its store; the floor takes the
# same bytes with the same client (curl) through the same kind of socket into a Python endpoint that only copies
# them to a file on the same disk (and, as a second floor, drops them). Reports MB/s per run (curl's own upload
# speed, median of RUNS) and the gate process's resident memory: before the first upload and at its peak (VmHWM).
#
#   benchmarks/compare-gate.sh [SIZE] [RUNS] [OUTPUT.md]   (defaults: 1G 5 benchmarks/compare-gate.md)
#
# Long (a few GiB through loopback per run): never part of dotnet test. Needs: dotnet, qemu-img, curl, python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
size=${1:-1G}
runs=${2:-5}
report=${3:-$here/compare-gate.md}
work=$(mktemp -d "${TMPDIR:-/tmp}/compare-gate.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
for tool in dotnet qemu-img curl python3; do
    command -v "$tool" > /dev/null || { echo "compare-gate: $tool is required" >&2; exit 1; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 200); do
        (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0
        sleep 0.1
    done
    echo "compare-gate: nothing listens on $1" >&2
    exit 1
}
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

echo "Building ProvisioningGate (Release)..." >&2
dotnet build "$repo/samples/ProvisioningGate/ProvisioningGate.csproj" -c Release -p:EnableSourceControlManagerQueries=false > "$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; exit 1; }
gate_dll="$repo/samples/ProvisioningGate/bin/Release/net10.0/ProvisioningGate.dll"

# Images: every byte of them crosses the socket. Sparse files, so the disk is not what is measured on the way in.
qemu-img create -q -f raw "$work/image.raw" "$size"
qemu-img create -q -f qcow2 -o preallocation=metadata "$work/image.qcow2" "$size"

gate_port=$(free_port)
ASPNETCORE_ENVIRONMENT=Production Logging__LogLevel__Default=Warning \
    dotnet "$gate_dll" --urls "http://127.0.0.1:$gate_port" --ImageRoot "$work/store" --BenchmarkDrain true > "$work/gate.log" 2>&1 &
gate_pid=$!
pids+=("$gate_pid")
sink_port=$(free_port)
python3 "$here/gate/sink.py" "$sink_port" "$work/sink.out" > "$work/sink.log" 2>&1 &
pids+=($!)
drop_port=$(free_port)
python3 "$here/gate/sink.py" "$drop_port" - > "$work/drop.log" 2>&1 &
pids+=($!)
wait_port "$gate_port"; wait_port "$sink_port"; wait_port "$drop_port"
rss_idle=$(kib "$gate_pid" VmRSS)

# One PUT; prints curl's upload speed in bytes/s after checking the status.
put() {
    local url=$1 file=$2 expect=$3 out
    out=$(curl -sS -o "$work/body" -w '%{http_code} %{speed_upload}' -H 'Expect:' -T "$file" "$url")
    [ "${out%% *}" = "$expect" ] || { echo "compare-gate: $url answered ${out%% *}: $(cat "$work/body")" >&2; exit 1; }
    echo "${out#* }"
}
median_mbs() { sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.0f", m / 1e6 }'; }

declare -A results
for image in raw qcow2; do
    file="$work/image.$image"
    curl -sS -o /dev/null -H 'Expect:' -T "$file" "http://127.0.0.1:$drop_port/warm"   # page cache warm for everyone
    for ((i = 0; i < runs; i++)); do
        put "http://127.0.0.1:$gate_port/images/$image-$i" "$file" 201 >> "$work/gate-$image"
        curl -sS -o /dev/null -X DELETE "http://127.0.0.1:$gate_port/images/$image-$i"
        put "http://127.0.0.1:$gate_port/drain" "$file" 201 >> "$work/kestrel-$image"
        put "http://127.0.0.1:$sink_port/x" "$file" 201 >> "$work/sink-$image"
        put "http://127.0.0.1:$drop_port/x" "$file" 201 >> "$work/drop-$image"
    done
    results[gate-$image]=$(median_mbs < "$work/gate-$image")
    results[sink-$image]=$(median_mbs < "$work/sink-$image")
    results[kestrel-$image]=$(median_mbs < "$work/kestrel-$image")
    results[drop-$image]=$(median_mbs < "$work/drop-$image")
done
rss_peak=$(kib "$gate_pid" VmHWM)
rss_end=$(kib "$gate_pid" VmRSS)

{
    echo "# Upload gate vs the pipe floor"
    echo
    echo "Made by \`benchmarks/compare-gate.sh $size $runs\` on $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, shared with other"
    echo "builds and tests (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)). $(dotnet --version | sed 's/^/.NET SDK /'),"
    echo "$(qemu-img --version | head -1), $(curl --version | head -1 | cut -d' ' -f1-2), $(python3 --version)."
    echo
    echo "Each upload is one \`curl -T\` PUT of a $size image made by qemu-img through 127.0.0.1. The gate is"
    echo "samples/ProvisioningGate (Release, Kestrel): it inspects the body as it streams (ImageUploadGate over"
    echo "Request.BodyReader) and writes it to its store, then judges and commits it. The floors take the same bytes"
    echo "through the same kind of socket into a Python endpoint that copies them to a file on the same disk, or"
    echo "drops them; and, to tell the gate's cost from the web server's, the same gate process answers"
    echo "\`PUT /drain\` (on with \`--BenchmarkDrain true\`) by copying Request.BodyReader to a file with the same"
    echo "FileStream settings and no inspection. MB/s is curl's upload speed (10^6 bytes/s), the median of $runs runs,"
    echo "the four endpoints taking turns within each run."
    echo
    echo "| Image ($size) | Gate MB/s | Same Kestrel, no gate, MB/s | Gate / that | Python floor to file MB/s | Gate / floor | Python floor, dropped MB/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for image in raw qcow2; do
        g=${results[gate-$image]} k=${results[kestrel-$image]} s=${results[sink-$image]} d=${results[drop-$image]}
        echo "| $image | $g | $k | $(awk -v g="$g" -v s="$k" 'BEGIN { printf "%.2f", g / s }') | $s | $(awk -v g="$g" -v s="$s" 'BEGIN { printf "%.2f", g / s }') | $d |"
    done
    echo
    echo "Gate process resident memory: $((rss_idle / 1024)) MiB before the first upload, $((rss_peak / 1024)) MiB at its"
    echo "peak (VmHWM) over all $((runs * 2)) uploads of $size, $((rss_end / 1024)) MiB after them. What the gate itself keeps"
    echo "per upload is its head and tail windows (4 MiB + 64 KiB by default); run again with another SIZE to see that"
    echo "the peak does not follow the image's size."
    echo
    echo "Raw runs (bytes/s):"
    echo
    for f in gate-raw kestrel-raw sink-raw drop-raw gate-qcow2 kestrel-qcow2 sink-qcow2 drop-qcow2; do
        echo "- $f: $(tr '\n' ' ' < "$work/$f")"
    done
} > "$report"
cat "$report"
