#!/usr/bin/env bash
# Cluster mode's control-plane benchmark: create+destroy throughput through confab-allocator against
# the embedded allocator, and how long a killed node's conferences are unreachable.
#   bench/cluster_load.sh BUILD_DIR [CYCLES]
#     BUILD_DIR   the build tree holding mcu/confab-mcu, allocator/confab-allocator and
#                 bench/confab-control-load (build/release for figures; nothing is built here)
#     CYCLES      create+destroy cycles per control-load client (default 500; 4 clients)
# On 127.0.0.1, fixed ports (checked free first): a private etcd (23379/23380), cluster nodes a, b, c
# (REST 23401-23403, telnet 23411-23413, media 24000-24999 / 25000-25999 / 26000-26999), allocators
# 1, 2 and 3 (REST 23421-23423, telnet 23431-23433; 3 with --record-batch 1) and a plain confab-mcu
# with the embedded allocator (REST 23441, telnet 23442, media 27000-27999). Every MCU runs
# --workers 1 --no-pin --no-video: the conferences are audio-only and what this measures is the
# control plane, so no video threads run beside it. (No longer a workaround: a conference's video half is made by its first participant
# with video, so an audio-only one never posts to a video worker and the churn cannot fill one's
# task ring.)
#   1. confab-control-load --clients 4 --cycles CYCLES against (a) the plain confab-mcu, (b)
#      allocator 1, (c) allocators 1 and 2 at once (two processes); then --split (every client
#      creates CYCLES conferences, then destroys them) with SPLIT_CLIENTS clients against (d) the
#      plain confab-mcu, (e) allocator 1 and (f) allocator 3 (records written one per transaction).
#      Prints the tables, the record writes per etcd transaction of allocator 1, and each daemon
#      group's CPU time per conference in each run.
#   2. creates FAILOVER_COUNT conferences through allocator 1, SIGKILLs the node hosting the most
#      and prints the time from the kill to node_down, to node_failed_over and to every one of its
#      conferences answering GET through allocator 2 from another node
#      (bench/cluster_load_failover.py).
# Environment: SPLIT_CLIENTS=16, FAILOVER_COUNT=50 (about a third land on the killed node),
# LOG_LEVEL=warn (every daemon's; info logs a line per create), NODE_MAX_CONFERENCES=1000000 (the
# nodes' and the plain confab-mcu's --max-conferences: an allocator counts every conference it
# placed on a node in the last --correction-window-ms, 3 s, against that limit, destroyed or not,
# so with the default 1000 a node refuses new ones above ~333 creates/s), KEEP=1 keeps the temp dir
# (logs, outputs).
# Exits non-zero if a daemon does not come up, a control-load run has failures or failover is
# incomplete within 30 s. Takes well under a minute on build/release.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
}
[[ $# -ge 1 && $# -le 2 && $1 != -h && $1 != --help ]] || usage
build_dir=$1
cycles=${2:-500}
[[ $cycles =~ ^[1-9][0-9]*$ ]] || { echo "cluster_load: CYCLES must be a positive integer" >&2; exit 2; }
clients=4
split_clients=${SPLIT_CLIENTS:-16}
log_level=${LOG_LEVEL:-warn}
node_max_conferences=${NODE_MAX_CONFERENCES:-1000000}
failover_count=${FAILOVER_COUNT:-50}

mcu_bin=$build_dir/mcu/confab-mcu
allocator_bin=$build_dir/allocator/confab-allocator
load_bin=$build_dir/bench/confab-control-load
[[ $build_dir = /* ]] || { mcu_bin=$repo/$mcu_bin; allocator_bin=$repo/$allocator_bin; load_bin=$repo/$load_bin; }
for bin in "$mcu_bin" "$allocator_bin" "$load_bin"; do
  [[ -x $bin ]] || { echo "cluster_load: $bin is missing (build it first)" >&2; exit 2; }
done
for tool in etcd curl python3 ss; do
  command -v "$tool" >/dev/null || { echo "cluster_load: $tool missing (scripts/install-deps.sh)" >&2; exit 2; }
done

etcd_client=23379 etcd_peer=23380
node_ids=(a b c)
node_rest=(23401 23402 23403)
node_telnet=(23411 23412 23413)
node_media=(24000-24999 25000-25999 26000-26999)
alloc_rest=(23421 23422 23423)
alloc_telnet=(23431 23432 23433)
base_rest=23441 base_telnet=23442 base_media=27000-27999

# Every fixed TCP port must be free: nothing listening on it. (Not a bind test: cpp-httplib binds
# with SO_REUSEPORT, so a second REST server would share a busy port, and a plain bind fails on the
# TIME_WAIT connections a previous run left.)
listening=" $(ss -Hltn | awk '{ n = split($4, a, ":"); printf "%s ", a[n] }')"
busy=
for port in "$etcd_client" "$etcd_peer" "${node_rest[@]}" "${node_telnet[@]}" "${alloc_rest[@]}" \
  "${alloc_telnet[@]}" "$base_rest" "$base_telnet"; do
  [[ $listening != *" $port "* ]] || busy+=" $port"
done
[[ -z $busy ]] || { echo "cluster_load: ports already listened on:$busy" >&2; exit 1; }
if [[ $(pgrep -c cc1plus || true) != 0 ]]; then
  echo "cluster_load: warning: a compiler is running; the figures share its CPU" >&2
fi

tmp=$(mktemp -d /tmp/confab-cluster-load.XXXXXX)
pids=()  # every process started here, stopped in reverse order at exit
declare -A pid_of
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for ((t = 0; t < 50; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  "$repo/scripts/etcd.sh" stop "$tmp/etcd" || true
  if [[ ${KEEP:-0} = 1 || $status -ne 0 ]]; then
    echo "cluster_load: logs kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "cluster_load: $1" >&2
  if [[ -n ${2:-} && -f $2 ]]; then
    echo "--- last lines of $2:" >&2
    tail -n 15 "$2" >&2
  fi
  exit 1
}

# start NAME COMMAND...: runs it in the background, output in $tmp/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  pid_of[$name]=$!
  disown $!  # no "Killed" notice from bash when the failover step kills a node
}

# wait_up NAME WHAT CHECK...: polls CHECK every 0.1 s for 30 s while NAME's process lives.
wait_up() {
  local name=$1 what=$2
  shift 2
  for ((t = 0; t < 300; t++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    kill -0 "${pid_of[$name]}" 2>/dev/null || fail "$name ($what) exited at start" "$tmp/$name.log"
    sleep 0.1
  done
  fail "$name ($what) did not come up within 30 s" "$tmp/$name.log"
}

rest_up() { curl -sf -m 1 "http://127.0.0.1:$1/healthz"; }
# An allocator is ready when a conference created through it lands on a node and goes away again.
places() {
  local id
  id=$(curl -sf -m 2 -XPOST "http://127.0.0.1:$1/v1/conferences" -d '{"name":"ready"}' | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
  [[ -n $id ]] && curl -sf -m 2 -XDELETE "http://127.0.0.1:$1/v1/conferences/$id"
}
nodes_up() { [[ $(curl -sf -m 1 "http://127.0.0.1:$1/v1/nodes" | grep -o '"control_url"' | wc -l) -eq 3 ]]; }

echo "cluster_load: $build_dir, $clients clients x $cycles cycles, logs in $tmp"
# etcd is stopped by scripts/etcd.sh stop after the daemons (nodes deregister on their way out).
etcd_pid=$("$repo/scripts/etcd.sh" start "$tmp/etcd" "$etcd_client" "$etcd_peer") ||
  fail "etcd did not start on 127.0.0.1:$etcd_client" "$tmp/etcd/etcd.log"
etcd_url=http://127.0.0.1:$etcd_client

common=(--workers 1 --no-pin --stats-interval 0 --log-level "$log_level")
mcu_common=("${common[@]}" --no-video)
for i in 0 1 2; do
  start "node-${node_ids[i]}" "$mcu_bin" "${mcu_common[@]}" --etcd "$etcd_url" --node-id "${node_ids[i]}" --lease-ttl 3 \
    --rest-listen "127.0.0.1:${node_rest[i]}" --telnet-listen "127.0.0.1:${node_telnet[i]}" \
    --media-ports "${node_media[i]}" --max-conferences "$node_max_conferences"
done
start baseline "$mcu_bin" "${mcu_common[@]}" --rest-listen "127.0.0.1:$base_rest" --telnet-listen "127.0.0.1:$base_telnet" \
  --max-conferences "$node_max_conferences" \
  --media-ports "$base_media"
# Allocator 3 writes every record alone (--record-batch 1): the same-run baseline of the batching.
for i in 0 1 2; do
  batch=()
  [[ $i -eq 2 ]] && batch=(--record-batch 1)
  start "allocator-$((i + 1))" "$allocator_bin" --etcd "$etcd_url" --log-level "$log_level" "${batch[@]}" \
    --rest-listen "127.0.0.1:${alloc_rest[i]}" --telnet-listen "127.0.0.1:${alloc_telnet[i]}"
done
for i in 0 1 2; do wait_up "node-${node_ids[i]}" "cluster node, REST ${node_rest[i]}" rest_up "${node_rest[i]}"; done
wait_up baseline "plain confab-mcu, REST $base_rest" rest_up "$base_rest"
for i in 0 1 2; do
  wait_up "allocator-$((i + 1))" "sees 3 nodes, REST ${alloc_rest[i]}" nodes_up "${alloc_rest[i]}"
  wait_up "allocator-$((i + 1))" "places a conference, REST ${alloc_rest[i]}" places "${alloc_rest[i]}"
done
echo "cluster_load: etcd, nodes a b c, allocators 1 2 and the plain confab-mcu are up"

# --- 1. create+destroy throughput ---
load_failed=0
# load NAME PORT CLIENTS [ARG...]: starts confab-control-load with CLIENTS clients against 127.0.0.1:PORT
# (and ARGs), output in $tmp/load-NAME.out.
load() {
  local name=$1 port=$2 count=$3
  shift 3
  "$load_bin" --rest "127.0.0.1:$port" --clients "$count" --cycles "$cycles" "$@" >"$tmp/load-$name.out" 2>&1 &
  pids+=($!)
  pid_of[load-$name]=$!
}
load_wait() {
  local rc=0
  wait "${pid_of[load-$1]}" || rc=$?
  if [[ $rc -ne 0 ]]; then
    load_failed=1
    echo "cluster_load: confab-control-load against $1 exited $rc:" >&2
    sed 's/^/  /' "$tmp/load-$1.out" >&2
  fi
}
field() { sed -n "$2" "$tmp/load-$1.out" | head -n 1; }
row() {
  local label=$1 name=$2
  printf '%-34s %8s %8s %10s %10s %10s %8s\n' "$label" \
    "$(field "$name" 's/.* cycles=\([0-9]*\).*/\1/p')" "$(field "$name" 's/.* failures=\([0-9]*\).*/\1/p')" \
    "$(field "$name" 's/^cycles\/s=\([0-9]*\).*/\1/p')" "$(field "$name" 's/^create_us p50=\([0-9]*\).*/\1/p')" \
    "$(field "$name" 's/^create_us .* p99=\([0-9]*\).*/\1/p')" "$(field "$name" 's/.* seconds=\([0-9.]*\).*/\1/p')"
}

# CPU time (clock ticks, user+system) of each daemon, around every run: what one operation costs
# each of them, a figure the machine's noise (other processes) does not change the way it changes rates.
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
declare -A cpu_before cpu_cost
cpu_groups=(etcd embedded allocators nodes)
# group_ticks GROUP: the summed CPU ticks of one daemon group now.
group_ticks() {
  case $1 in
    etcd) cpu_ticks "$etcd_pid" ;;
    embedded) cpu_ticks "${pid_of[baseline]}" ;;
    allocators) echo $(($(cpu_ticks "${pid_of[allocator-1]}") + $(cpu_ticks "${pid_of[allocator-2]}") +
      $(cpu_ticks "${pid_of[allocator-3]}"))) ;;
    nodes) echo $(($(cpu_ticks "${pid_of[node-a]}") + $(cpu_ticks "${pid_of[node-b]}") + $(cpu_ticks "${pid_of[node-c]}"))) ;;
  esac
}
cpu_start() {
  for group in "${cpu_groups[@]}"; do cpu_before[$group]=$(group_ticks "$group"); done
}
# cpu_stop NAME OPERATIONS: per daemon group, µs of CPU per operation during run NAME.
cpu_stop() {
  local name=$1 ops=$2
  for group in "${cpu_groups[@]}"; do
    cpu_cost[$name.$group]=$((($(group_ticks "$group") - cpu_before[$group]) * 1000000 / hz / (ops > 0 ? ops : 1)))
  done
}
ops_of() { field "$1" 's/.* cycles=\([0-9]*\).*/\1/p'; }

cpu_start; load embedded "$base_rest" "$clients"; load_wait embedded; cpu_stop embedded "$(ops_of embedded)"
cpu_start; load alloc1 "${alloc_rest[0]}" "$clients"; load_wait alloc1; cpu_stop alloc1 "$(ops_of alloc1)"
cpu_start; load both1 "${alloc_rest[0]}" "$clients"; load both2 "${alloc_rest[1]}" "$clients"; load_wait both1; load_wait both2
cpu_stop both $(($(ops_of both1) + $(ops_of both2)))
cpu_start; load split-embedded "$base_rest" "$split_clients" --split; load_wait split-embedded
cpu_stop split-embedded "$(ops_of split-embedded)"
cpu_start; load split-alloc1 "${alloc_rest[0]}" "$split_clients" --split; load_wait split-alloc1
cpu_stop split-alloc1 "$(ops_of split-alloc1)"
cpu_start; load split-alloc3 "${alloc_rest[2]}" "$split_clients" --split; load_wait split-alloc3
cpu_stop split-alloc3 "$(ops_of split-alloc3)"

echo
echo "create+destroy, REST, $clients clients x $cycles cycles per target (creates/s = cycles/s)"
printf '%-34s %8s %8s %10s %10s %10s %8s\n' target cycles failures creates/s "p50 us" "p99 us" seconds
row "(a) embedded (plain confab-mcu)" embedded
row "(b) allocator 1 -> 3 nodes" alloc1
row "(c) allocators 1+2: allocator 1" both1
row "(c) allocators 1+2: allocator 2" both2
rate1=$(field both1 's/^cycles\/s=\([0-9]*\).*/\1/p') rate2=$(field both2 's/^cycles\/s=\([0-9]*\).*/\1/p')
done1=$(field both1 's/.* cycles=\([0-9]*\).*/\1/p') done2=$(field both2 's/.* cycles=\([0-9]*\).*/\1/p')
sum_rate=$((${rate1:-0} + ${rate2:-0})) sum_cycles=$((${done1:-0} + ${done2:-0}))
printf '%-34s %8s %8s %10s\n' "(c) allocators 1+2: sum" "$sum_cycles" "" "$sum_rate"
echo "create p50/p99: latency of POST /v1/conferences as the client saw it (µs)"

echo
echo "creates, then destroys (--split), REST, $split_clients clients x $cycles conferences per target"
printf '%-34s %8s %8s %10s %10s %10s %10s\n' target creates failures creates/s "p50 us" "p99 us" destroys/s
split_row() {
  printf '%-34s %8s %8s %10s %10s %10s %10s\n' "$1" \
    "$(field "$2" 's/.* cycles=\([0-9]*\).*/\1/p')" "$(field "$2" 's/.* failures=\([0-9]*\).*/\1/p')" \
    "$(field "$2" 's/^creates\/s=\([0-9]*\).*/\1/p')" "$(field "$2" 's/^create_us p50=\([0-9]*\).*/\1/p')" \
    "$(field "$2" 's/^create_us .* p99=\([0-9]*\).*/\1/p')" "$(field "$2" 's/.* destroys\/s=\([0-9]*\).*/\1/p')"
}
split_row "(d) embedded (plain confab-mcu)" split-embedded
split_row "(e) allocator 1 -> 3 nodes" split-alloc1
split_row "(f) allocator 3, --record-batch 1" split-alloc3
metrics=$(curl -sf -m 2 "http://127.0.0.1:${alloc_rest[0]}/metrics" || true)
writes=$(sed -n 's/^confab_record_writes_total \([0-9]*\).*/\1/p' <<<"$metrics")
txns=$(sed -n 's/^confab_record_transactions_total \([0-9]*\).*/\1/p' <<<"$metrics")
echo "allocator 1 wrote $writes conference records (creates and deletes) in $txns etcd transactions"

echo
echo "CPU per conference (create and destroy), µs, by daemon (user+system time around each run)"
printf '%-34s %10s %10s %10s %10s %10s\n' run etcd allocators nodes embedded sum
for run in embedded alloc1 both split-embedded split-alloc1 split-alloc3; do
  e=${cpu_cost[$run.etcd]} a=${cpu_cost[$run.allocators]} n=${cpu_cost[$run.nodes]} b=${cpu_cost[$run.embedded]}
  printf '%-34s %10s %10s %10s %10s %10s\n' "$run" "$e" "$a" "$n" "$b" $((e + a + n + b))
done

# --- 2. failover ---
echo
failover_rc=0
python3 "$repo/bench/cluster_load_failover.py" --create "127.0.0.1:${alloc_rest[0]}" --poll "127.0.0.1:${alloc_rest[1]}" \
  --log "$tmp/allocator-1.log" --log "$tmp/allocator-2.log" --log "$tmp/allocator-3.log" \
  --count "$failover_count" --timeout 30 \
  --node "a=${pid_of[node-a]}" --node "b=${pid_of[node-b]}" --node "c=${pid_of[node-c]}" || failover_rc=$?

for name in "${!pid_of[@]}"; do
  [[ $name = load-* || $name = node-* ]] && continue
  kill -0 "${pid_of[$name]}" 2>/dev/null || { echo "cluster_load: $name died during the run" >&2; load_failed=1; }
done
[[ $load_failed -eq 0 ]] || fail "a control-load run failed (see above)"
[[ $failover_rc -eq 0 ]] || fail "failover measurement incomplete (exit $failover_rc)" "$tmp/allocator-1.log"
