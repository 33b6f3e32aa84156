#!/usr/bin/env bash
# prosody.sh: starts and stops a private Prosody (loopback only, all state in one directory) for a
# test or for the router daemon's run; never touches /etc/prosody or the system service.
#
#   scripts/prosody.sh start DIR C2S_PORT COMPONENT_PORT [user:password ...]
#       writes DIR/prosody.cfg.lua, registers the users on VirtualHost "localhost", starts Prosody
#       in the background, waits (bounded) until C2S_PORT accepts, prints the pid.
#       The external component (XEP-0114) "router.localhost" takes the secret in
#       $CONFAB_XMPP_SECRET (default "confab-router-secret").
#   scripts/prosody.sh run DIR C2S_PORT COMPONENT_PORT [user:password ...]
#       the same, but Prosody replaces the script in the foreground (tests start it as a child that
#       dies with them, and wait for the port themselves).
#   scripts/prosody.sh stop DIR
set -euo pipefail

dir="" c2s_port="" component_port=""

usage() {
  echo "usage: $0 start DIR C2S_PORT COMPONENT_PORT [user:password ...] | stop DIR" >&2
  exit 2
}

# Bounded wait for a TCP port on 127.0.0.1 to accept; bash's /dev/tcp needs no extra tool.
wait_port() {
  local port=$1 pid=$2 tries=$3
  for ((i = 0; i < tries; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# Writes DIR/prosody.cfg.lua and registers the users; sets $dir, $c2s_port, $component_port.
prepare() {
  [[ $# -ge 3 ]] || usage
  dir=$1 c2s_port=$2 component_port=$3
  shift 3
  local secret=${CONFAB_XMPP_SECRET:-confab-router-secret}
  # The secret and DIR go into Lua strings as they are.
  if [[ $secret == *[\"\\]* || $dir == *[\"\\]* ]]; then
    echo "the secret and DIR must not contain \" or \\" >&2
    exit 2
  fi
  mkdir -p "$dir/data" "$dir/certs"
  dir=$(cd "$dir" && pwd)
  local run_as_root=false
  [[ $(id -u) -eq 0 ]] && run_as_root=true

  # Prosody refuses root unless told (mod_posix); as root it stays root so that DIR needs no chown.
  # Only the modules the router needs: no s2s, no HTTP, no offline storage (a call invitation to an
  # offline user must not be delivered hours later), internal_plain auth (no PBKDF2 per login:
  # tests log in many bots).
  cat >"$dir/prosody.cfg.lua" <<EOF
-- Private Prosody for Confab tests and runs (written by scripts/prosody.sh; do not edit).
run_as_root = $run_as_root
pidfile = "$dir/prosody.pid"
data_path = "$dir/data"
log = { { levels = { min = "${CONFAB_PROSODY_LOG_LEVEL:-info}" }, to = "file", filename = "$dir/prosody.log" } }
plugin_paths = {}
modules_enabled = { "roster", "saslauth", "disco", "ping", "posix", "adhoc", "admin_adhoc" }
-- XEP-0133: the router asks whether an account exists (admin#user-stats), which Prosody tells
-- admins only; every other query answers the same for a missing and an unapproved account.
admins = { "call@router.localhost" }
modules_disabled = { "s2s", "offline", "s2s_auth_certs" }
interfaces = { "127.0.0.1" }
c2s_ports = { $c2s_port }
c2s_interfaces = { "127.0.0.1" }
component_ports = { $component_port }
component_interfaces = { "127.0.0.1" }
s2s_ports = {}
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"

VirtualHost "localhost"
  ssl = {}

Component "router.localhost"
  component_secret = "$secret"
EOF

  local user password
  for spec in "$@"; do
    user=${spec%%:*}
    password=${spec#*:}
    prosodyctl --config "$dir/prosody.cfg.lua" register "$user" localhost "$password" \
      >>"$dir/prosodyctl.log" 2>&1
  done
}

cmd_run() {
  prepare "$@"
  exec prosody --config "$dir/prosody.cfg.lua" -F
}

cmd_start() {
  prepare "$@"
  prosody --config "$dir/prosody.cfg.lua" -F >>"$dir/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/launcher.pid"
  if ! wait_port "$c2s_port" "$pid" 200 || ! wait_port "$component_port" "$pid" 20; then
    echo "prosody did not start; see $dir/prosody.log and $dir/stdout.log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
  fi
  echo "$pid"
}

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  local dir=$1 pid
  pid=$(cat "$dir/launcher.pid" 2>/dev/null || true)
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null || return 0
  # Bounded: Prosody closes its sessions and exits on SIGTERM within a second or so.
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/launcher.pid"; return 0; }
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/launcher.pid"
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  run) shift; cmd_run "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) usage ;;
esac
