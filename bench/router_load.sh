#!/usr/bin/env bash
# The call router load benchmark (issue 7): SIP callers (sipp) dial IM users (slixmpp bots that
# accept at once) through confab-router, on loopback, with a private Prosody and confab-mcu;
# prints call setups/s, failed calls, INVITE->200 p50/p99 and the router's own share.
#   bench/router_load.sh [--no-build]
# Environment (defaults):
#   RATES=200          call rates to run, one after another (e.g. RATES=50,100,200,300: a ramp)
#   DURATION=15        seconds per rate: CALLS = RATE * DURATION (or CALLS=N for every rate)
#   CONCURRENT=100     sipp's -l: calls up at most at once
#   HOLD_MS            how long each call stays up; default CONCURRENT/RATE s - 50 ms, so that about
#                      CONCURRENT calls are up at once at the asked rate
#   USERS=200          IM users (bots) called round robin; a user ringing, or in a call (until
#                      its call's conference ends: the caller's BYE, then the router's next poll of
#                      the conference, 1 s at most) is BUSY to a second call, so USERS / RATE must
#                      exceed the setup time plus HOLD_MS plus about a second
#   WARMUP_CALLS=USERS calls at 50/s before the runs, not measured (the router learns each
#                      user's presence on its first call)
#   RESULTS=FILE       JSON line per run appended (default build/router_load-DATE.jsonl)
#   MCU_WORKERS=2      confab-mcu --workers (unpinned; every call is a live participant the MCU mixes for)
#   CODEC=pcmu         what the callers offer: pcmu, or opus (Opus first, PCMU second). The MCU
#                      encodes each call's mix every 20 ms: with Opus (~0.25 ms an encode here), 100
#                      one-caller conferences take most of a core and the MCU's REST answers slow down
#   KEEP=1             keep the temp dir (logs, sipp files); BUILD_DIR=build/release
# Everything runs on 127.0.0.1 with kernel-picked ports in a temp dir and is stopped at exit.
# Before each run it waits (QUIET_WAIT=600 s at most) while a compiler runs; a run during which one
# ran is flagged. What "router time" is: bench/router_load_stats.py (top comment).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

build_dir=${BUILD_DIR:-build/release}
rates=${RATES:-200}
duration=${DURATION:-15}
concurrent=${CONCURRENT:-100}
users=${USERS:-200}
warmup_calls=${WARMUP_CALLS:-$users}
results=${RESULTS:-$build_dir/router_load-$(date +%Y%m%d-%H%M%S).jsonl}
secret=load-secret-$$
case ${CODEC:-pcmu} in
  pcmu) formats="0" ;;
  opus) formats="111 0" ;;
  *) echo "router_load: CODEC is pcmu or opus" >&2; exit 2 ;;
esac
stats="python3 $repo/bench/router_load_stats.py"
build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "router_load: unknown argument $arg" >&2; exit 2 ;;
  esac
done

for tool in sipp prosody prosodyctl curl /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "router_load: $tool missing (scripts/install-deps.sh)" >&2; exit 2; }
done
if [ "$build" -eq 1 ]; then
  [ -f "$build_dir/CMakeCache.txt" ] ||
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCONFAB_TESTS=OFF -DCONFAB_BENCH=OFF >/dev/null
  cmake --build "$build_dir" -j"${BUILD_JOBS:-1}" --target confab-mcu confab-router confab-directory >/dev/null
fi
mcu_bin=$repo/$build_dir/mcu/confab-mcu
router_bin=$repo/$build_dir/router/confab-router
directory_bin=$repo/$build_dir/router/cli/confab-directory
[ -x "$directory_bin" ] || directory_bin=$repo/$build_dir/router/confab-directory
for bin in "$mcu_bin" "$router_bin" "$directory_bin"; do
  [ -x "$bin" ] || { echo "router_load: $bin not built" >&2; exit 2; }
done
mkdir -p "$(dirname "$results")"
results=$(cd "$(dirname "$results")" && pwd)/$(basename "$results")

tmp=$(mktemp -d /tmp/confab-router-load.XXXXXX)
pids=()  # started daemons, stopped in reverse order at exit
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for ((t = 0; t < 50; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  "$repo/scripts/prosody.sh" stop "$tmp/prosody" || true
  if [ "${KEEP:-0}" = 1 ] || [ "$status" -ne 0 ]; then
    echo "router_load: logs kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Bounded wait for a condition (a shell command), polling every 0.1 s.
wait_for() {
  local what=$1 tries=$2
  shift 2
  for ((t = 0; t < tries; t++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "router_load: timed out waiting for $what (logs in $tmp)" >&2
  return 1
}
alive() { for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done; }

read -r c2s_port component_port rest_port telnet_port http_port sip_port sipp_port sipp_media_port < <($stats ports 5 3)
media_ports=$($stats media-range 1000)

# Prosody with users 1..N. prosodyctl registers user1 (~0.2 s a user); the others get the same
# account file (internal_plain storage, data/localhost/accounts/NAME.dat), which Prosody reads at login.
CONFAB_XMPP_SECRET=$secret CONFAB_PROSODY_LOG_LEVEL=warn \
  "$repo/scripts/prosody.sh" start "$tmp/prosody" "$c2s_port" "$component_port" user1:pw1 >"$tmp/prosody.pid"
pids+=("$(cat "$tmp/prosody.pid")")
accounts=$tmp/prosody/data/localhost/accounts
[ -f "$accounts/user1.dat" ] || { echo "router_load: no $accounts/user1.dat" >&2; exit 1; }
for ((i = 2; i <= users; i++)); do
  sed "s/\"pw1\"/\"pw$i\"/" "$accounts/user1.dat" >"$accounts/user$i.dat"
done

"$mcu_bin" --workers "${MCU_WORKERS:-2}" --no-pin --no-video --rest-listen "127.0.0.1:$rest_port" --telnet-listen "127.0.0.1:$telnet_port" \
  --media-ports "$media_ports" --max-conferences 1000000 --stats-interval 0 --log-level warn >"$tmp/mcu.log" 2>&1 &
pids+=($!)
wait_for "confab-mcu" 100 curl -sf "http://127.0.0.1:$rest_port/healthz"

# The directory: userK, whose IM address is userK@localhost; sipp's injection file names them.
echo SEQUENTIAL >"$tmp/users.csv"
for ((i = 1; i <= users; i++)); do
  "$directory_bin" --db "$tmp/directory.sqlite" add-user "user$i" --im "user$i@localhost" >/dev/null
  echo "user$i;" >>"$tmp/users.csv"
done

"$router_bin" --directory "$tmp/directory.sqlite" --sip-listen "127.0.0.1:$sip_port" \
  --xmpp-server "127.0.0.1:$component_port" --xmpp-secret "$secret" --allocator "http://127.0.0.1:$rest_port" \
  --http-listen "127.0.0.1:$http_port" --ring-timeout 10 >"$tmp/router.log" 2>&1 &
router_pid=$!
pids+=("$router_pid")
wait_for "confab-router (XMPP connected)" 100 grep -q "router xmpp event=connected" "$tmp/router.log"
wait_for "confab-router ready" 100 grep -q "router event=ready" "$tmp/router.log"

/usr/bin/python3 "$repo/bench/router_load_bots.py" "$c2s_port" "$users" </dev/null >"$tmp/bots.log" 2>"$tmp/bots.err" &
bots_pid=$!
pids+=("$bots_pid")
wait_for "$users bots online" 1200 grep -q "^online" "$tmp/bots.log"
prosody_pid=$(cat "$tmp/prosody.pid")
mcu_pid=${pids[1]}
echo "router_load: $users users online; router pid $router_pid, SIP 127.0.0.1:$sip_port, logs in $tmp" >&2

metric() { curl -sf "http://127.0.0.1:$http_port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# One sipp run: rate, calls, hold, concurrency, directory to run in; its exit code in $sipp_status.
run_sipp() {
  local rate=$1 calls=$2 hold=$3 dir=$4
  mkdir -p "$dir"
  local timeout=$((calls / rate + hold / 1000 + 60))
  sipp_status=0
  (cd "$dir" && /usr/bin/time -f "%U %S" -o sipp.time sipp "127.0.0.1:$sip_port" -sf "$repo/bench/sipp/router_load_uac.xml" -inf "$tmp/users.csv" \
    -key formats "$formats" -i 127.0.0.1 -p "$sipp_port" -mp "$sipp_media_port" -r "$rate" -l "$concurrent" -m "$calls" -d "$hold" \
    -timer_resol 1 -recv_timeout 15000 -timeout "${timeout}s" -timeout_error -nostdin \
    -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 -trace_screen -trace_err \
    >sipp.out 2>&1) || sipp_status=$?
}

# g++ compiles in cc1plus/cc1, clang in "clang -cc1".
compiling() { pgrep -x cc1plus >/dev/null || pgrep -x cc1 >/dev/null || pgrep -f -- ' -cc1 ' >/dev/null; }

echo "router_load: warm-up, $warmup_calls calls at 50/s" >&2
run_sipp 50 "$warmup_calls" 100 "$tmp/warmup"
echo "router_load: warm-up sipp exit $sipp_status" >&2
sleep 1
$stats mcu-clean "$rest_port" >/dev/null

IFS=, read -r -a rate_list <<<"$rates"
for rate in "${rate_list[@]}"; do
  calls=${CALLS:-$((rate * duration))}
  hold=${HOLD_MS:-$((concurrent * 1000 / rate - 50))}
  ((hold >= 0)) || hold=0
  for ((t = 0; t < ${QUIET_WAIT:-600} / 10 && $(compiling && echo 1 || echo 0); t++)); do
    ((t == 0)) && echo "router_load: waiting while a compiler runs" >&2
    sleep 10
  done
  alive || { echo "router_load: a daemon died (logs in $tmp)" >&2; exit 1; }
  compiler_ran=
  compiling && compiler_ran=--compiler-ran
  dir=$tmp/rate$rate
  offset=$(stat -c %s "$tmp/router.log")
  procs="router=$router_pid prosody=$prosody_pid bots=$bots_pid mcu=$mcu_pid"
  cpu_before=$($stats cpu $procs)
  t0=$(date +%s.%N)
  (while sleep 0.5; do compiling && touch "$dir.compiler"; done) &
  watcher=$!
  run_sipp "$rate" "$calls" "$hold" "$dir"
  t1=$(date +%s.%N)
  cpu_after=$($stats cpu $procs)
  kill "$watcher" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
  [ -f "$dir.compiler" ] && compiler_ran=--compiler-ran
  # The calls' BYEs are answered; the router should hold no call now.
  sleep 1
  pending=$(metric confab_router_calls_pending || echo "?")
  sip_active=$(metric confab_router_sip_active_calls || echo "?")
  $stats report --rate "$rate" --concurrent "$concurrent" --hold-ms "$hold" --rtt "$(ls "$dir"/*_rtt.csv)" \
    --stat "$dir/stat.csv" --router-log "$tmp/router.log" --log-offset "$offset" --cpu-before "$cpu_before" \
    --cpu-after "$cpu_after" --sipp-cpu "$(awk 'END { print $1 + $2 }' "$dir/sipp.time" 2>/dev/null || echo 0)" --wall "$(echo "$t1 - $t0" | bc)" --sipp-exit "$sipp_status" $compiler_ran \
    --json-out "$results"
  echo "  after the run: router calls pending=$pending, SIP calls active=$sip_active; MCU $($stats mcu-clean "$rest_port")"
done
kill -USR1 "$bots_pid"
sleep 0.2
echo "router_load: bots $(grep '^stats' "$tmp/bots.log" | tail -1); results in $results" >&2
