#!/usr/bin/env bash
# Mutation testing with Stryker.NET over one folder of the library (long: behind BACKINGCHAIN_MUTATION=1 in the
# README's sense; CI does not run it). Usage: tests/mutation/run.sh FOLDER [TEST-FILTER]
#   FOLDER       a folder of src/BackingChain.Core, e.g. Trust or Chain
#   TEST-FILTER  a `dotnet test --filter` expression limiting the tests Stryker runs per mutant (default: all)
# The report lands in tests/mutation/out/FOLDER/ (not committed); the score line is copied into README.md by hand,
# with every surviving mutant killed by a new test or named there as equivalent.
set -euo pipefail
cd "$(dirname "$0")"
folder="${1:?usage: run.sh FOLDER [TEST-FILTER]}"
filter="${2:-}"
dotnet tool restore >/dev/null
args=(--config-file stryker-config.json -m "**/$folder/**/*.cs" -O "out/$folder")
if [ -n "$filter" ]; then
  args+=(--test-case-filter "$filter")
fi
dotnet dotnet-stryker "${args[@]}"
