#!/usr/bin/env python3
# Creates C AudioBridge rooms in Janus 1.1.2 with S plain-RTP participants each, over the HTTP API.
"""Sets up Janus AudioBridge conferences for the audio capacity benchmark.

  bench/janus/rooms.py --rooms C --per-room S [--port-base 40000] [--quality 4] ...

One Janus session; one handle creates the rooms (48 kHz, plain RTP allowed); every participant
joins on its own handle with an "rtp" object naming the load generator's port for it
(--port-base + --port-step * index, index = room_index * S + k). Once every join has been
answered, prints one JSON line per participant on stdout:

  {"room": 1000, "participant_port": 40000, "janus_ip": "127.0.0.1", "janus_port": 20000,
   "payload_type": 111, "id": 123...}

then closes stdout (EOF = all joined). Send the Opus RTP for a participant from
participant_port to janus_ip:janus_port: Janus's socket is connect()ed to 127.0.0.1:participant_port
and drops anything from another source, and it sends the mix back only after its first packet.

Runs until SIGTERM/SIGINT (or --duration seconds), long-polling the session's events and
sending a keepalive every 25 s; then destroys the rooms and the session. Standard library only.
"""
import argparse
import json
import os
import queue
import random
import signal
import string
import sys
import threading
import time
import urllib.error
import urllib.request

KEEPALIVE_S = 25          # Janus's default session_timeout is 60 s
LONG_POLL_MAXEV = 100     # events per long-poll answer
JOIN_TIMEOUT_S = 30.0     # all joins must be answered within this
ERR_ROOM_EXISTS = 486     # JANUS_AUDIOBRIDGE_ERROR_ROOM_EXISTS


def log(msg):
    print(f"rooms: {msg}", file=sys.stderr, flush=True)


class Janus:
    """Janus API over HTTP: one session, synchronous requests, events from a long-poll thread."""

    def __init__(self, url, trace):
        self.url = url.rstrip("/")
        self.trace = trace
        self.session = None
        self.events = {}            # transaction -> queue.Queue of async events
        self.events_lock = threading.Lock()
        self.stop = threading.Event()
        self.poller = None

    def _tx(self):
        return "".join(random.choices(string.ascii_letters + string.digits, k=16))

    def _http(self, url, body=None, timeout=10.0):
        data = None if body is None else json.dumps(body).encode()
        if self.trace:
            log(f">>> {'POST' if body is not None else 'GET'} {url[len(self.url) - 6:]} "
                f"{'' if body is None else json.dumps(body)}")
        req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            answer = json.load(r)
        if self.trace:
            log(f"<<< {json.dumps(answer)}")
        return answer

    def post(self, path, body, expect="success", async_event=False):
        """POSTs body (a transaction is added). With async_event, registers the transaction's
        event queue before sending so the poller cannot race us; returns (answer, queue)."""
        tx = self._tx()
        body = dict(body, transaction=tx)
        q = None
        if async_event:
            q = queue.Queue()
            with self.events_lock:
                self.events[tx] = q
        answer = self._http(f"{self.url}{path}", body)
        if answer.get("janus") != expect:
            raise RuntimeError(f"{body.get('janus')} {path}: {json.dumps(answer)}")
        return (answer, q) if async_event else answer

    def create_session(self):
        self.session = self.post("", {"janus": "create"})["data"]["id"]
        self.poller = threading.Thread(target=self._poll, name="janus-poll", daemon=True)
        self.poller.start()
        threading.Thread(target=self._keepalive, name="janus-keepalive", daemon=True).start()

    def attach(self):
        return self.post(f"/{self.session}",
                         {"janus": "attach", "plugin": "janus.plugin.audiobridge"})["data"]["id"]

    def request(self, handle, body):
        """A synchronous plugin request (create, destroy, list...): returns plugindata.data."""
        answer = self.post(f"/{self.session}/{handle}", {"janus": "message", "body": body})
        return answer["plugindata"]["data"]

    def request_async(self, handle, body):
        """An asynchronous plugin request (join, leave): Janus acks; the result is an event."""
        _, q = self.post(f"/{self.session}/{handle}", {"janus": "message", "body": body},
                         expect="ack", async_event=True)
        return q

    def _poll(self):
        rid = 0
        while not self.stop.is_set():
            rid += 1
            try:
                events = self._http(f"{self.url}/{self.session}?rid={rid}&maxev={LONG_POLL_MAXEV}",
                                    timeout=40.0)
            except (urllib.error.URLError, OSError) as e:
                if self.stop.is_set():
                    return
                log(f"long-poll failed: {e}")
                self.stop.wait(1.0)
                continue
            if isinstance(events, dict):
                events = [events]
            for ev in events:
                kind = ev.get("janus")
                if kind == "keepalive":
                    continue
                tx = ev.get("transaction")
                with self.events_lock:
                    q = self.events.pop(tx, None) if tx else None
                if q is not None:
                    q.put(ev)
                elif kind in ("hangup", "timeout", "detached") or \
                        (kind == "event" and "error" in ev.get("plugindata", {}).get("data", {})):
                    log(f"event: {json.dumps(ev)}")
                # Other events (another participant joined/left) are just drained.

    def _keepalive(self):
        while not self.stop.wait(KEEPALIVE_S):
            try:
                self.post(f"/{self.session}", {"janus": "keepalive"}, expect="ack")
            except (urllib.error.URLError, OSError, RuntimeError) as e:
                log(f"keepalive failed: {e}")

    def destroy_session(self):
        self.stop.set()
        if self.session is not None:
            try:
                self.post(f"/{self.session}", {"janus": "destroy"})
            except (urllib.error.URLError, OSError, RuntimeError) as e:
                log(f"session destroy failed: {e}")
            self.session = None


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:18088/janus")
    p.add_argument("--rooms", type=int, default=1, help="C: rooms to create")
    p.add_argument("--per-room", type=int, default=2, help="S: participants per room")
    p.add_argument("--first-room", type=int, default=1000, help="room ids are first..first+C-1")
    p.add_argument("--port-base", type=int, default=40000, help="load generator's first port")
    p.add_argument("--port-step", type=int, default=2, help="between participants' ports")
    p.add_argument("--quality", type=int, default=4,
                   help="Opus encoder complexity of each participant's mix, 1..10 (join 'quality')")
    p.add_argument("--bitrate", type=int, default=0, help="Opus bps, 0 = libopus decides")
    p.add_argument("--payload-type", type=int, default=111)
    p.add_argument("--audiolevel-ext", type=int, default=1,
                   help="RTP extension id of ssrc-audio-level the generator sends, 0 = none")
    p.add_argument("--fec", action="store_true", help="in-band FEC in Janus's encoders")
    p.add_argument("--expected-loss", type=int, default=0, help="0..20 %%, with --fec")
    p.add_argument("--prebuffer", type=int, default=None,
                   help="packets Janus buffers per participant before mixing (room default 6)")
    p.add_argument("--duration", type=float, default=0.0,
                   help="seconds to keep the rooms after joining, 0 = until SIGTERM/SIGINT")
    p.add_argument("--trace", action="store_true", help="log every request and answer to stderr")
    a = p.parse_args()
    if a.rooms < 1 or a.per_room < 1:
        p.error("--rooms and --per-room must be >= 1")
    if not 1 <= a.quality <= 10:
        p.error("--quality must be 1..10 (Janus 1.1.2 rejects 0)")
    last_port = a.port_base + a.port_step * (a.rooms * a.per_room - 1)
    if not 0 < a.port_base <= last_port <= 65535:
        p.error(f"participant ports {a.port_base}..{last_port} out of range")
    return a


def create_room(janus, admin, room, args):
    body = {
        "request": "create",
        "room": room,
        "description": f"confab-bench-{room}",
        "is_private": True,
        "permanent": False,
        "sampling_rate": 48000,
        "allow_rtp_participants": True,
        "audiolevel_ext": True,     # for WebRTC joins; RTP joins name the id in "rtp"
        "audiolevel_event": False,  # no talking/stopped-talking events to drain
        "record": False,
    }
    if args.prebuffer is not None:
        body["default_prebuffering"] = args.prebuffer
    if args.fec:
        body["default_expectedloss"] = args.expected_loss
    if args.bitrate:
        body["default_bitrate"] = args.bitrate
    data = janus.request(admin, body)
    if data.get("error_code") == ERR_ROOM_EXISTS:
        log(f"room {room} left over from an earlier run: destroying it")
        janus.request(admin, {"request": "destroy", "room": room, "permanent": False})
        data = janus.request(admin, body)
    if data.get("audiobridge") != "created":
        raise RuntimeError(f"create room {room}: {json.dumps(data)}")


def join_body(room, index, port, args):
    rtp = {"ip": "127.0.0.1", "port": port, "payload_type": args.payload_type}
    if args.audiolevel_ext > 0:
        rtp["audiolevel_ext"] = args.audiolevel_ext
    if args.fec:
        rtp["fec"] = True
    body = {"request": "join", "room": room, "display": f"p{index}", "muted": False,
            "codec": "opus", "quality": args.quality, "rtp": rtp}
    if args.bitrate:
        body["bitrate"] = args.bitrate
    if args.fec:
        body["expected_loss"] = args.expected_loss
    if args.prebuffer is not None:
        body["prebuffer"] = args.prebuffer
    return body


def main():
    args = parse_args()
    janus = Janus(args.url, args.trace)
    done = threading.Event()
    joined = threading.Event()

    def on_signal(*_):
        done.set()
        if not joined.is_set():
            raise KeyboardInterrupt   # abort the setup wherever it is, then clean up
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    rooms = []
    status = 0
    try:
        janus.create_session()
        admin = janus.attach()
        for r in range(args.rooms):
            room = args.first_room + r
            create_room(janus, admin, room, args)
            rooms.append(room)
        # Send every join first (each is acked at once), then collect the "joined" events.
        pending = []
        for r, room in enumerate(rooms):
            for k in range(args.per_room):
                index = r * args.per_room + k
                port = args.port_base + args.port_step * index
                handle = janus.attach()
                pending.append((room, port, janus.request_async(handle, join_body(room, index, port, args))))
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        lines = []
        for room, port, q in pending:
            ev = q.get(timeout=max(0.1, deadline - time.monotonic()))
            data = ev.get("plugindata", {}).get("data", {})
            rtp = data.get("rtp")
            if data.get("audiobridge") != "joined" or not rtp:
                raise RuntimeError(f"join room {room} port {port}: {json.dumps(ev)}")
            lines.append(json.dumps({"room": room, "participant_port": port, "janus_ip": rtp["ip"],
                                     "janus_port": rtp["port"], "payload_type": rtp["payload_type"],
                                     "id": data.get("id")}))
        joined.set()
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        # EOF tells a reading pipe that every participant is in.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        log(f"{len(rooms)} rooms, {len(lines)} participants joined (session {janus.session}); "
            f"{'until SIGTERM' if args.duration <= 0 else f'for {args.duration:g} s'}")
        done.wait(args.duration if args.duration > 0 else None)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, queue.Empty, urllib.error.URLError, OSError, KeyError) as e:
        log(f"failed: {e!r}")
        status = 1
    finally:
        for room in rooms:
            try:
                janus.request(admin, {"request": "destroy", "room": room, "permanent": False})
            except (RuntimeError, urllib.error.URLError, OSError) as e:
                log(f"destroy room {room} failed: {e}")
        janus.destroy_session()
        log("rooms and session destroyed")
    return status


if __name__ == "__main__":
    sys.exit(main())
