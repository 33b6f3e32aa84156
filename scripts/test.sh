#!/usr/bin/env bash
# Installs dependencies, builds Confab with ASan+UBSan and warnings as errors, runs the whole suite.
# This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=build/test
# No test runs the micro-benchmarks (engineers build them in Release, BENCHMARKS.md); the load
# generators the tests drive are built either way.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCONFAB_SANITIZE=ON -DCONFAB_WERROR=ON -DCONFAB_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
