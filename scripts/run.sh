#!/usr/bin/env bash
# Installs dependencies, builds Confab (Release) and starts confab-mcu on its embedded default:
# one node, loopback only, one worker per core. Extra arguments go to confab-mcu (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=build/release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCONFAB_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target confab-mcu
exec "$build/mcu/confab-mcu" "$@"
