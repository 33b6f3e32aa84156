#!/usr/bin/env bash
# etcd.sh: starts and stops a private single-member etcd (loopback only, all state in one
# directory) for the cluster mode's tests, benchmarks and scripts/run.sh; never touches the system
# service or /var/lib/etcd. Production runs three or five members (README, "Cluster mode").
#
#   scripts/etcd.sh start DIR CLIENT_PORT PEER_PORT
#       starts etcd in the background, waits (bounded) until CLIENT_PORT answers, prints the pid.
#   scripts/etcd.sh run DIR CLIENT_PORT PEER_PORT
#       the same, but etcd replaces the script in the foreground (tests start it as a child that
#       dies with them, and wait for the port themselves). Running it again on the same DIR
#       restarts the same member with its data.
#   scripts/etcd.sh stop DIR
set -euo pipefail

usage() {
  echo "usage: $0 start|run DIR CLIENT_PORT PEER_PORT | stop DIR" >&2
  exit 2
}

# The member's command line. Test data is thrown away, so fsync is skipped (--unsafe-no-fsync):
# on a shared disk it would make every write cost milliseconds the tests do not measure. Progress
# notifications every 5 s keep idle watch streams provably alive (EtcdWatch's idle timeout).
etcd_argv() {
  local dir=$1 client=$2 peer=$3
  argv=(etcd --name confab-test --data-dir "$dir/data"
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client"
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer"
    --initial-cluster "confab-test=http://127.0.0.1:$peer"
    --unsafe-no-fsync --experimental-watch-progress-notify-interval 5s --log-level warn --logger zap)
}

cmd=${1:-}
[[ -n $cmd ]] || usage
shift
case $cmd in
  run)
    [[ $# -eq 3 ]] || usage
    mkdir -p "$1"
    etcd_argv "$@"
    exec "${argv[@]}"
    ;;
  start)
    [[ $# -eq 3 ]] || usage
    mkdir -p "$1"
    etcd_argv "$@"
    "${argv[@]}" >"$1/etcd.log" 2>&1 &
    pid=$!
    echo "$pid" >"$1/etcd.pid"
    for ((i = 0; i < 200; i++)); do
      if curl -sf -m 1 "http://127.0.0.1:$2/health" >/dev/null 2>&1; then
        echo "$pid"
        exit 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    echo "etcd.sh: etcd did not come up on 127.0.0.1:$2; see $1/etcd.log" >&2
    exit 1
    ;;
  stop)
    [[ $# -eq 1 ]] || usage
    [[ -f $1/etcd.pid ]] && kill "$(cat "$1/etcd.pid")" 2>/dev/null || true
    rm -f "$1/etcd.pid"
    ;;
  *) usage ;;
esac
