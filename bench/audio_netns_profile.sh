#!/usr/bin/env bash
# The audio capacity profile with confab-mcu and the load generator in two network namespaces of
# their own joined by a veth pair, so that what the MCU pays for delivering its packets into the
# generator's sockets (on loopback: ~11 % of its CPU, in its own softirq) moves to the generator's
# CPU: receive packet steering (RPS) on the generator's veth end hands each arriving packet to CPU
# LOAD_CPU's backlog. The generator's packets to the MCU are delivered by the generator's CPU, as
# on loopback. Needs root; the namespaces and their addresses (10.77.0.1/2, inside them only) are
# made at start and removed at exit.
#   bench/audio_netns_profile.sh [CONFERENCES] [SIZE]     # defaults 32 20; Release build in BUILD_DIR
# Environment: BUILD_DIR (build/release), SPEECH (build/speech.wav), DURATION (5), WARMUP (2),
# COMPLEXITY (4), SERVER_CPU (1), LOAD_CPU (0), NICE (0), RT (0: SCHED_FIFO priority), OUT
# (build/netns-profile: perf.data, generator JSON, MCU log).
set -euo pipefail
cd "$(dirname "$0")/.."

conferences=${1:-32}
size=${2:-20}
build_dir=${BUILD_DIR:-build/release}
speech=${SPEECH:-build/speech.wav}
out=${OUT:-build/netns-profile}
server_cpu=${SERVER_CPU:-1}
load_cpu=${LOAD_CPU:-0}
mcu_ns=confab-prof-mcu
gen_ns=confab-prof-gen
mcu_ip=10.77.0.1
gen_ip=10.77.0.2
mkdir -p "$out"

sched=()
[ "${NICE:-0}" != 0 ] && sched+=(nice -n "$NICE")
[ "${RT:-0}" != 0 ] && sched+=(chrt -f "$RT")

# The control API listens beyond loopback only with a token.
token=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mcu_pid=
cleanup() {
  [ -n "$mcu_pid" ] && kill "$mcu_pid" 2>/dev/null && wait "$mcu_pid" 2>/dev/null || true
  ip netns del "$mcu_ns" 2>/dev/null || true
  ip netns del "$gen_ns" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$mcu_ns"
ip netns add "$gen_ns"
ip link add cfp-mcu netns "$mcu_ns" type veth peer name cfp-gen netns "$gen_ns"
ip -n "$mcu_ns" addr add "$mcu_ip/30" dev cfp-mcu
ip -n "$gen_ns" addr add "$gen_ip/30" dev cfp-gen
for ns in "$mcu_ns" "$gen_ns"; do ip -n "$ns" link set lo up; done
ip -n "$mcu_ns" link set cfp-mcu up
ip -n "$gen_ns" link set cfp-gen up
# RPS: packets arriving on the generator's end are processed (IP, UDP, socket wake-up) on its CPU.
ip netns exec "$gen_ns" sh -c "printf '%x' $((1 << load_cpu)) > /sys/class/net/cfp-gen/queues/rx-0/rps_cpus"

ip netns exec "$mcu_ns" "${sched[@]}" taskset -c "$server_cpu" "$build_dir/mcu/confab-mcu" --workers 1 --no-pin \
  --rest-listen "$mcu_ip:18080" --telnet-listen "$mcu_ip:14023" --media-ip "$mcu_ip" --media-ports 30000-39999 \
  --max-conferences 100000 --stats-interval 0 --log-level warn --token "$token" >"$out/confab-mcu.log" 2>&1 &
mcu_pid=$!
for _ in $(seq 100); do
  ip netns exec "$gen_ns" curl -sf "http://$mcu_ip:18080/healthz" >/dev/null && break
  sleep 0.1
done

ulimit -n "$(ulimit -Hn)"  # a socket per participant
ip netns exec "$gen_ns" "${sched[@]}" taskset -c "$load_cpu" "$build_dir/bench/confab-audio-load" \
  --rest "$mcu_ip:18080" --token "$token" --local-ip "$gen_ip" --speech "$speech" --conferences "$conferences" --size "$size" \
  --mcu-complexity "${COMPLEXITY:-4}" --duration "${DURATION:-5}" --warmup "${WARMUP:-2}" --pid "$mcu_pid" --json \
  >"$out/load.json" 2>"$out/load.err" &
gen_pid=$!
perf record -g -F 999 -p "$mcu_pid" -o "$out/perf.data" >/dev/null 2>&1 &
perf_pid=$!
wait "$gen_pid" || echo "audio_netns_profile: generator exited with $?" >&2
kill -INT "$perf_pid" && wait "$perf_pid" || true
grep '^{' "$out/load.json" | tail -1
perf report -i "$out/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -8
