#!/usr/bin/env bash
# The video capacity benchmark in one command: Confab against a hand-built ffmpeg MCU, same inputs, same run.
#   bench/video_capacity.sh [--no-build] [--profile] [runner flags...]
# Installs what is missing (ffmpeg; linux-perf with --profile), builds Release confab-mcu in
# build/release when SYSTEMS has confab (CONFAB_MCU=path uses that binary instead, no build), makes the
# 16 input clips once (build/video-inputs/), then hands over to bench/video_capacity.py (its --help
# lists the flags; each has an environment twin):
#   SYSTEMS=ffmpeg,confab (also ffmpeg-auto)  LAYOUT=2x2|4x4|2x2,4x4  CONFERENCES=1  MODE=fixed|search
#   DURATION=20  WARMUP=5  OUT_SIZE=1280x720  BITRATE_KBPS=1500  PRESET=veryfast  RESULTS=FILE
#   PROFILE=1  PROFILE_SYSTEM=confab  PROFILE_CONFERENCES=0  PROFILE_SECONDS=15  MCU_ARGS="--workers 2"
#   SENDERS=conference|participant  CONFAB_MCU=path  COMPILER_WAIT=600  MIN_FPS=29  MIN_SPEED=0.98
# Examples:
#   bench/video_capacity.sh                                    # 1 conference 2x2 on ffmpeg and Confab
#   LAYOUT=2x2,4x4 bench/video_capacity.sh                     # both layouts, the 4x4 / 2x2 ratio
#   MODE=search LAYOUT=2x2 bench/video_capacity.sh --profile   # capacity of the node, then the profile there
#   SYSTEMS=ffmpeg,ffmpeg-auto bench/video_capacity.sh         # the baseline single-threaded and threaded
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build/release}
systems=${SYSTEMS-ffmpeg,confab}
build=1
profile=${PROFILE:-}
pass=()
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --profile) profile=1; pass+=("$arg") ;;
    --systems=*) systems=${arg#--systems=}; pass+=("$arg") ;;
    *) pass+=("$arg") ;;
  esac
done

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  echo "video_capacity: installing ffmpeg" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq ffmpeg >/dev/null
fi
if [ -n "$profile" ]; then
  if ! command -v perf >/dev/null 2>&1 || ! perf --version >/dev/null 2>&1; then
    echo "video_capacity: installing linux-perf" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq linux-perf >/dev/null
  fi
  # perf record -p on the MCU needs <= 1 (or root) to see kernel time (the sends) as well; put it back at exit.
  paranoid=$(cat /proc/sys/kernel/perf_event_paranoid)
  if [ "$paranoid" -gt 1 ] && [ "$(id -u)" -ne 0 ]; then
    as_root sysctl -q kernel.perf_event_paranoid=1
    trap 'as_root sysctl -q kernel.perf_event_paranoid='"$paranoid" EXIT
  fi
  if ! perf record -q -o /dev/null -- true >/dev/null 2>&1; then
    echo "video_capacity: perf record does not work for this user (perf_event_paranoid=$paranoid); no profile" >&2
    exit 1
  fi
fi

if [[ ",$systems," == *,confab,* ]] && [ -z "${CONFAB_MCU:-}" ] && [ "$build" -eq 1 ]; then
  [ -f "$build_dir/CMakeCache.txt" ] || cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build_dir" -j"${BUILD_JOBS:-2}" --target confab-mcu >/dev/null
fi

BUILD_DIR=$build_dir SYSTEMS=$systems python3 bench/video_capacity.py "${pass[@]}"
