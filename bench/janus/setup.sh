#!/usr/bin/env bash
# Installs Janus 1.1.2 (Debian package) and writes a private loopback-only config for the benchmark.
#   bench/janus/setup.sh [CONFDIR]      (default: build/janus, relative to the repository root)
# Environment: JANUS_HTTP_PORT (18088), JANUS_RTP_RANGE (AudioBridge plain-RTP ports, 20000-29999),
# JANUS_DEBUG_LEVEL (4; 3 logs warnings only), JANUS_SESSION_TIMEOUT (60 s).
# The config loads one transport (HTTP on 127.0.0.1, no admin API) and one plugin (AudioBridge);
# every other .so in the package's folders is listed in a `disable` line, so nothing else listens.
# No STUN/TURN, ICE restricted to loopback, event handlers and external loggers off, log to a file.
# Idempotent: quiet when janus is installed; rewrites the config files each time.
set -euo pipefail
cd "$(dirname "$0")/../.."

confdir=${1:-build/janus}
http_port=${JANUS_HTTP_PORT:-18088}
rtp_range=${JANUS_RTP_RANGE:-20000-29999}
debug_level=${JANUS_DEBUG_LEVEL:-4}
session_timeout=${JANUS_SESSION_TIMEOUT:-60}

if ! dpkg-query -W -f='${Status}' janus 2>/dev/null | grep -q "install ok installed"; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "janus/setup: installing janus"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq janus >/dev/null
fi

libdir=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/janus
[ -d "$libdir/plugins" ] || { echo "janus/setup: $libdir/plugins missing" >&2; exit 1; }

# Comma-separated names of every .so in $1 except $2 (the one module we keep).
others() {
  local dir=$1 keep=$2 out="" f
  for f in "$dir"/*.so; do
    [ -e "$f" ] || continue
    f=$(basename "$f")
    [ "$f" = "$keep" ] && continue
    out+="${out:+,}$f"
  done
  printf '%s' "$out"
}

mkdir -p "$confdir"
confdir=$(cd "$confdir" && pwd)

cat >"$confdir/janus.jcfg" <<EOF
# Written by bench/janus/setup.sh: Janus for the Confab audio benchmark, loopback only.
general: {
	configs_folder = "$confdir"
	plugins_folder = "$libdir/plugins"
	transports_folder = "$libdir/transports"
	events_folder = "$libdir/events"
	loggers_folder = "$libdir/loggers"
	log_to_stdout = false
	log_to_file = "$confdir/janus.log"
	debug_level = $debug_level
	debug_timestamps = true
	debug_colors = false
	interface = "127.0.0.1"
	server_name = "confab-bench-janus"
	session_timeout = $session_timeout
	protected_folders = [ "/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr", "/var" ]
}
certificates: {
}
media: {
	ipv6 = false
}
nat: {
	# No stun_server/turn_server: nothing is looked up. Plain-RTP AudioBridge participants never
	# use ICE; these only keep any WebRTC handle that might appear on loopback.
	nice_debug = false
	ice_lite = true
	full_trickle = true
	ice_enforce_list = "lo"
	ignore_mdns = true
}
plugins: {
	disable = "$(others "$libdir/plugins" libjanus_audiobridge.so)"
}
transports: {
	disable = "$(others "$libdir/transports" libjanus_http.so)"
}
loggers: {
	disable = "$(others "$libdir/loggers" none)"
}
events: {
	broadcast = false
	disable = "$(others "$libdir/events" none)"
}
EOF

cat >"$confdir/janus.transport.http.jcfg" <<EOF
# Written by bench/janus/setup.sh: Janus API over plain HTTP on 127.0.0.1 only, no admin API.
general: {
	json = "compact"
	base_path = "/janus"
	http = true
	port = $http_port
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
cors: {
}
EOF

cat >"$confdir/janus.plugin.audiobridge.jcfg" <<EOF
# Written by bench/janus/setup.sh: no static rooms; bench/janus/rooms.py creates them over the API.
general: {
	events = false
	# Plain-RTP participants: Janus binds its side of each participant on local_ip, in this range.
	rtp_port_range = "$rtp_range"
	local_ip = "127.0.0.1"
}
EOF
echo "$confdir"
