#!/usr/bin/env bash
# Installs dependencies, builds Confab (Release) and starts it on its embedded default, loopback
# only: confab-mcu (one node, one worker per core; REST 127.0.0.1:8080, telnet 127.0.0.1:4023) and,
# beside it, the call router confab-router (SIP 127.0.0.1:5060, /metrics 127.0.0.1:8091) with a
# private Prosody (XMPP 127.0.0.1:5222, users alice, bob and carol, password = name), a directory of
# those users and a standing conference "lobby". Ctrl-C stops everything. Extra arguments go to
# confab-mcu (try --help). CONFAB_ROUTER=0 starts the MCU alone.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=build/release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCONFAB_TESTS=OFF >/dev/null
if [ "${CONFAB_ROUTER:-1}" = 0 ]; then
  cmake --build "$build" -j"$(nproc)" --target confab-mcu
  exec "$build/mcu/confab-mcu" "$@"
fi
cmake --build "$build" -j"$(nproc)" --target confab-mcu confab-router confab-directory

run=$build/run
mkdir -p "$run"
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/prosody.sh stop "$run/prosody" || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

"$build/mcu/confab-mcu" "$@" &
pids+=($!)

# The XMPP server the router's IM plugin needs, started by our own script (no system service).
secret=${CONFAB_XMPP_SECRET:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export CONFAB_XMPP_SECRET=$secret
rm -rf "$run/prosody" && mkdir -p "$run/prosody"
scripts/prosody.sh start "$run/prosody" 5222 5347 alice:alice bob:bob carol:carol >/dev/null

directory=$run/directory.db
rm -f "$directory"
for user in alice bob carol; do
  "$build/router/confab-directory" --db "$directory" add-user "$user" --im "$user@localhost" >/dev/null
done

# The allocator must answer before the router's standing conference can be made (it retries too).
for ((i = 0; i < 100; i++)); do
  (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break
  sleep 0.1
done
"$build/router/confab-router" --directory "$directory" --standing lobby &
pids+=($!)
cat >&2 <<EOF
confab: MCU on 127.0.0.1:8080 (REST) and :4023 (telnet); router on sip:127.0.0.1:5060 and XMPP
  (Prosody on 127.0.0.1:5222, users alice/bob/carol, password = name). Try, from an XMPP client
  logged in as alice: "/call bob@localhost" to call@router.localhost; or a SIP phone dialling
  sip:bob@127.0.0.1:5060; or message lobby@router.localhost for the standing conference.
EOF
wait -n "${pids[@]}"
