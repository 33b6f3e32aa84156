#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a given time.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 60 s, every target in fuzz/)
# Seeds come from fuzz/corpus/<target>/ and are never modified; the growing corpus lives in
# build/fuzz/corpus/<target>/, crashes in fuzz/findings/<target>/. Logs: build/fuzz/<target>.log.
# Exits non-zero if any target found a crash, leak or timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
scripts/install-deps.sh
build=build/fuzz
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCONFAB_FUZZ=ON -DCONFAB_TESTS=OFF -DCONFAB_BENCH=OFF >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*_fuzz.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

status=0
for t in "${targets[@]}"; do
  seeds=fuzz/corpus/${t%_fuzz}
  work=$build/corpus/${t%_fuzz}
  findings=fuzz/findings/$t
  mkdir -p "$work" "$findings"
  [ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null || true
  log=$build/$t.log
  echo "fuzz: $t for ${seconds}s (log $log)"
  if "$build/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$findings/" \
       "$work" >"$log" 2>&1; then
    outcome=ok
  else
    outcome="FAILED (see $log and $findings/)"
    status=1
  fi
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+' || echo '?')
  echo "fuzz: $t seconds=$seconds executions=$execs coverage_edges=$cov outcome=$outcome"
done
exit $status
