#!/usr/bin/env bash
# Starts, stops or checks the benchmark's Janus (config from bench/janus/setup.sh).
#   bench/janus/run.sh start [CONFDIR]   writes the config, starts janus in the background, waits
#                                        until GET /janus/info answers, prints the PID
#   bench/janus/run.sh stop [CONFDIR]    SIGTERM to that PID, SIGKILL after 10 s
#   bench/janus/run.sh status [CONFDIR]  prints the PID if running, exits 1 otherwise
# CONFDIR defaults to build/janus; JANUS_HTTP_PORT etc. as in setup.sh; JANUS_WRAPPER, words put
# before the janus command (e.g. "taskset -c 1" to keep it on one CPU: its threads inherit the mask). The PID is in CONFDIR/janus.pid,
# the log in CONFDIR/janus.log (Janus's own), stdout/stderr in CONFDIR/janus.out.
set -euo pipefail
cd "$(dirname "$0")/../.."

cmd=${1:-}
confdir=${2:-build/janus}
http_port=${JANUS_HTTP_PORT:-18088}
pidfile=$confdir/janus.pid

running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q janus "/proc/$pid/comm" 2>/dev/null || return 1
  echo "$pid"
}

case "$cmd" in
  start)
    if pid=$(running_pid); then
      echo "janus/run: already running" >&2
      echo "$pid"
      exit 0
    fi
    # Someone else answering on the port would pass the readiness check below: refuse instead.
    if curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$http_port/" 2>/dev/null; then
      echo "janus/run: 127.0.0.1:$http_port already in use by another process" >&2
      exit 1
    fi
    confdir=$(bench/janus/setup.sh "$confdir")
    pidfile=$confdir/janus.pid
    : >"$confdir/janus.log"
    # setsid: its own process group, so a Ctrl-C in the caller's terminal doesn't reach it.
    # shellcheck disable=SC2086  # JANUS_WRAPPER is a list of words
    setsid ${JANUS_WRAPPER:-} janus -C "$confdir/janus.jcfg" -F "$confdir" -N >"$confdir/janus.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pidfile"
    deadline=$((SECONDS + 20))
    until curl -sf --max-time 1 "http://127.0.0.1:$http_port/janus/info" >/dev/null 2>&1; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "janus/run: janus exited during startup; last log lines:" >&2
        tail -n 20 "$confdir/janus.log" "$confdir/janus.out" >&2 || true
        rm -f "$pidfile"
        exit 1
      fi
      if [ $SECONDS -ge $deadline ]; then
        echo "janus/run: no answer on 127.0.0.1:$http_port after 20 s; stopping it" >&2
        kill "$pid" 2>/dev/null || true
        rm -f "$pidfile"
        exit 1
      fi
      sleep 0.2
    done
    echo "$pid"
    ;;
  stop)
    pid=$(running_pid) || { rm -f "$pidfile"; exit 0; }
    kill -TERM "$pid"
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then
        echo "janus/run: $pid ignored SIGTERM for 10 s, killing" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
    rm -f "$pidfile"
    ;;
  status)
    running_pid
    ;;
  *)
    echo "usage: $0 start|stop|status [CONFDIR]" >&2
    exit 2
    ;;
esac
