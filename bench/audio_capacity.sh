#!/usr/bin/env bash
# The audio capacity benchmark in one command: Confab against Janus AudioBridge, same load, same run.
#   bench/audio_capacity.sh [--no-build] [--profile] [runner flags...]
# Installs what is missing (espeak-ng + sox through bench/make_speech.sh, janus through
# bench/janus/setup.sh, linux-perf with --profile), builds Release confab-mcu + confab-audio-load in
# build/release, writes the speech WAV once (build/speech.wav), then hands over to
# bench/audio_capacity.py (its --help lists the flags; each has an environment twin):
#   SYSTEMS=confab4,confab-default,janus4  SIZES=5,20,100,1000  MODE=search|fixed  DURATION=10
#   WARMUP=3  SERVER_CPU=1  LOAD_CPU=0  RESULTS=FILE  PROFILE=1  PROFILE_SYSTEM=confab4  PROFILE_SIZE=20
# Examples:
#   bench/audio_capacity.sh                               # everything (about 20 minutes)
#   SYSTEMS=confab4 SIZES=20 bench/audio_capacity.sh      # one capacity search
#   SYSTEMS= bench/audio_capacity.sh --profile            # only the profile (searches size 20 first)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build/release}
speech=${SPEECH:-build/speech.wav}
systems=${SYSTEMS-confab4,confab-default,janus4}
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

if [[ ",$systems," == *,janus* ]]; then
  bench/janus/setup.sh "${JANUS_CONFDIR:-build/janus-capacity}" >/dev/null  # installs janus when missing
fi
if [ -n "$profile" ]; then
  if ! command -v perf >/dev/null 2>&1 || ! perf --version >/dev/null 2>&1; then
    echo "audio_capacity: installing linux-perf" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq linux-perf >/dev/null
  fi
  # perf record -p on our own daemon needs <= 1 to see kernel time (the I/O) as well; put it back at exit.
  paranoid=$(cat /proc/sys/kernel/perf_event_paranoid)
  if [ "$paranoid" -gt 1 ]; then
    as_root sysctl -q kernel.perf_event_paranoid=1
    trap 'as_root sysctl -q kernel.perf_event_paranoid='"$paranoid" EXIT
  fi
fi

if [ "$build" -eq 1 ]; then
  [ -f "$build_dir/CMakeCache.txt" ] || cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build_dir" -j"${BUILD_JOBS:-2}" --target confab-mcu confab-audio-load >/dev/null
fi
mkdir -p "$(dirname "$speech")"
[ -s "$speech" ] || bench/make_speech.sh "$speech" >&2

BUILD_DIR=$build_dir SPEECH=$speech SYSTEMS=$systems python3 bench/audio_capacity.py "${pass[@]}"
