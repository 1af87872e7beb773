#!/usr/bin/env bash
# Builds the fuzz harness, instruments BackingChain.Core.dll with SharpFuzz, makes the seed corpus (qemu-img images
# plus the harness's own byte-made ones) and runs afl-fuzz on one target or on every target in turn.
#
#   tests/BackingChain.Fuzz/run-fuzz.sh [TARGET[,TARGET...]|all] [SECONDS_PER_TARGET]     (default: all, 600)
#   tests/BackingChain.Fuzz/run-fuzz.sh --list
#
# Needs: afl++ (apt-get install -y afl++), qemu-img (apt-get install -y qemu-utils), the .NET SDK. The SharpFuzz
# instrumenter is the dotnet tool SharpFuzz.CommandLine 2.3.0, installed into a tool manifest under the work folder.
# Work folder: $FUZZ_WORK (default: artifacts/fuzz, ignored by git). Findings: $FUZZ_WORK/findings/TARGET/default/.
# Environment: FUZZ_NICE (default 19), FUZZ_TIMEOUT_MS (afl -t, default 10000), AFL_* variables pass through.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${FUZZ_WORK:-$repo/artifacts/fuzz}"
target="${1:-all}"
seconds="${2:-600}"
nice_level="${FUZZ_NICE:-19}"
timeout_ms="${FUZZ_TIMEOUT_MS:-10000}"

command -v afl-fuzz >/dev/null || { echo "afl-fuzz is required (apt-get install -y afl++)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "qemu-img is required (apt-get install -y qemu-utils)" >&2; exit 1; }

mkdir -p "$work"
out="$work/bin"

echo "== build and publish the harness"
rm -rf "$out"
dotnet publish "$here/BackingChain.Fuzz.csproj" -c Release -o "$out" -p:UseAppHost=false --nologo -v quiet

if [ "$target" = "--list" ]; then
  dotnet "$out/BackingChain.Fuzz.dll" list
  exit 0
fi

echo "== instrument BackingChain.Core.dll (only the library under test)"
if [ ! -f "$work/.config/dotnet-tools.json" ]; then
  (cd "$work" && dotnet new tool-manifest --force >/dev/null)
fi
if ! (cd "$work" && dotnet tool list --local | grep -qi "sharpfuzz.commandline *2.3.0"); then
  (cd "$work" && dotnet tool install SharpFuzz.CommandLine --version 2.3.0 >/dev/null)
fi
(cd "$work" && dotnet tool run sharpfuzz "$out/BackingChain.Core.dll")

echo "== seed corpus"
images="$work/qemu-images"
rm -rf "$images" "$work/seeds"
mkdir -p "$images"
(
  cd "$images"
  q() { qemu-img create -q "$@" >/dev/null; }
  q -f raw base.raw 1M
  q -f qcow2 -o cluster_size=512 qcow2-v3.img 1M
  q -f qcow2 -o cluster_size=512,compat=0.10 qcow2-v2.img 1M
  q -f qcow2 -o cluster_size=512 -b base.raw -F raw qcow2-backing.img 1M
  q -f qcow2 -o cluster_size=512,data_file=qcow2-data.raw,data_file_raw=on qcow2-datafile.img 64K
  q -f qcow2 -o cluster_size=16384,lazy_refcounts=on,compression_type=zstd,extended_l2=on,refcount_bits=64 -b base.raw -F raw qcow2-features.img 1M
  q -f qcow -b base.raw -F raw qcow-backing.img 1M
  q -f qcow qcow-plain.img 1M
  q -f qed -o cluster_size=4096,table_size=1 qed-plain.img 1M
  q -f qed -o cluster_size=4096,table_size=1 -b base.raw -F raw qed-backing.img 1M
  q -f vmdk vmdk-sparse.img 1M
  q -f vmdk -o subformat=streamOptimized vmdk-stream.img 1M
  q -f vmdk -o subformat=monolithicFlat vmdk-flat.img 1M
  q -f vpc vpc-dynamic.img 1M
  q -f vhdx vhdx-whole.img 1M
  q -f vdi vdi-dynamic.img 1M
  q -f parallels parallels-plain.img 1M
  q -f luks --object secret,id=s0,data=fuzz -o key-secret=s0,iter-time=10 luks-v1.img 1M
  rm -f vmdk-flat-flat.vmdk qcow2-data.raw base.raw
  # VHDX: the structures the span parsers read, cut out of the 4 MiB file (header 1, region table 1).
  dd if=vhdx-whole.img of=vhdx-header.img bs=4096 skip=16 count=1 status=none
  dd if=vhdx-whole.img of=vhdx-regions.img bs=65536 skip=3 count=1 status=none
  mv vhdx-whole.img ../vhdx-whole.img.unused
)
dotnet "$out/BackingChain.Fuzz.dll" seeds "$work/seeds" "$images"

if [ "$target" = all ]; then
  targets="$(dotnet "$out/BackingChain.Fuzz.dll" list)"
else
  targets="${target//,/ }"
fi

# The dictionary: every format's magic and the reference shapes the trust rules care about.
dict="$work/magics.dict"
cat > "$dict" <<'DICT'
qcow2="QFI\xfb"
kdmv="KDMV"
cowd="COWD"
desc="# Disk DescriptorFile"
createtype="createType="
parenthint="parentFileNameHint="
extent_rw="RW "
flat="FLAT"
sparse="SPARSE"
conectix="conectix"
cxsparse="cxsparse"
vhdxfile="vhdxfile"
regi="regi"
head="head"
metadata="metadata"
vdi="<<< "
vdi_sig="\x7f\x10\xda\xbe"
qed="QED\x00"
luks="LUKS\xba\xbe"
luks2="SKUL\xba\xbe"
parallels="WithoutFreeSpace"
parallels_ext="WithouFreSpacExt"
bochs="Bochs Virtual HD Image"
cloop="#!/bin/sh\x0a#V2.0 Format"
koly="koly"
mish="mish"
json="json:{"
nbd="nbd://"
dotdot="../"
DICT

export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
for t in $targets; do
  echo "== afl-fuzz $t for ${seconds}s"
  rm -rf "$work/findings/$t"
  mkdir -p "$work/findings/$t"
  # -V ends the run after the given seconds; afl exits non-zero when a seed already crashes (reported, not fatal).
  nice -n "$nice_level" afl-fuzz -i "$work/seeds/$t" -o "$work/findings/$t" -x "$dict" -t "$timeout_ms" -m none -V "$seconds" \
    -- dotnet "$out/BackingChain.Fuzz.dll" "$t" > "$work/findings/$t.log" 2>&1 || echo "afl-fuzz $t exited with $?"
  stats="$work/findings/$t/default/fuzzer_stats"
  if [ -f "$stats" ]; then
    grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|stability) ' "$stats" | tr -s ' ' | sed "s/^/$t: /"
  else
    tail -20 "$work/findings/$t.log"
  fi
done

echo "== crashes are in $work/findings/*/default/crashes/"
echo "   replay (library not instrumented): dotnet run --project $here -c Release -- TARGET --once FILE"
echo "   minimise: AFL_SKIP_BIN_CHECK=1 afl-tmin -i FILE -o FILE.min -t $timeout_ms -m none -- dotnet $out/BackingChain.Fuzz.dll TARGET"
