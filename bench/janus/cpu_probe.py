#!/usr/bin/env python3
# Rough Janus CPU per participant per 20 ms tick: replays Opus RTP into rooms.py's participants.
"""Sanity check of Janus AudioBridge CPU cost, not the benchmark (bench/audio_load.cpp is).

  bench/janus/rooms.py --rooms 1 --per-room 10 > parts.jsonl &
  bench/janus/cpu_probe.py parts.jsonl --pid $(bench/janus/run.sh status) --seconds 10

Encodes a few seconds of a sine tone to Opus once with ffmpeg (captured here as RTP payloads),
then sends one packet every 20 ms from each participant's port to its Janus port (own SSRC,
sequence and timestamp per participant), drains what Janus sends back, and after a warm-up reads
utime+stime of the Janus process from /proc/<pid>/stat over the measured window. Prints CPU
microseconds per participant per 20 ms tick and packets in/out.
"""
import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import time

TICK_S = 0.020
SAMPLES_PER_TICK = 960          # 20 ms at the Opus RTP clock of 48 kHz
RTP_HEADER = struct.Struct("!BBHII")
RTP_HEADER_LEN = RTP_HEADER.size
RTP_V2 = 0x80


def record_opus(pt, seconds, port):
    """Opus payloads of `seconds` of a 440 Hz tone, as ffmpeg's RTP muxer packs them (20 ms)."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", port))
    rx.settimeout(0.5)
    enc = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
         "-f", "lavfi", "-i", f"sine=f=440:sample_rate=48000:duration={seconds:g}",
         "-af", "volume=0.5", "-c:a", "libopus", "-b:a", "32k", "-ac", "1", "-frame_duration", "20",
         "-payload_type", str(pt), "-f", "rtp", f"rtp://127.0.0.1:{port}?localport={port + 2}"],
        stdout=subprocess.DEVNULL)
    payloads = []
    deadline = time.monotonic() + seconds + 5
    try:
        while time.monotonic() < deadline:
            try:
                pkt = rx.recv(2048)
            except socket.timeout:
                if enc.poll() is not None:
                    break
                continue
            if len(pkt) > RTP_HEADER_LEN and pkt[0] & 0xC0 == RTP_V2:
                cc = pkt[0] & 0x0F
                payloads.append(pkt[RTP_HEADER_LEN + 4 * cc:])
    finally:
        if enc.poll() is None:
            enc.kill()
        enc.wait()
        rx.close()
    return payloads


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])      # utime + stime (fields 14 and 15)


def thread_ticks(pid):
    """utime+stime per class of thread, from the thread names (comm) the AudioBridge gives."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue      # thread gone
        words = stat[stat.index("(") + 1:stat.rindex(")")].split()
        name = words[0] if words else "?"
        if name == "mixer":   # "mixer <room>" mixes the room; "mixer <room> <id>" encodes for one
            name = "room_mixer" if len(words) == 2 else "participant_encoder"
        elif name == "rtp":   # "rtp <room> <id>": receives and decodes one participant
            name = "participant_rtp_decode"
        fields = stat.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("parts", help="rooms.py output")
    ap.add_argument("--pid", type=int, required=True, help="Janus PID")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured window")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--record-port", type=int, default=31900)
    args = ap.parse_args()
    parts = [json.loads(line) for line in open(args.parts) if line.strip()]
    pt = parts[0]["payload_type"]
    payloads = record_opus(pt, 2.0, args.record_port)
    if len(payloads) < 10:
        sys.exit(f"cpu_probe: ffmpeg gave {len(payloads)} packets")

    socks = []
    for p in parts:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", p["participant_port"]))
        s.connect((p["janus_ip"], p["janus_port"]))
        s.setblocking(False)
        socks.append(s)
    hz = os.sysconf("SC_CLK_TCK")
    sent = received = 0
    start = time.monotonic()
    measure_from = start + args.warmup
    stop = measure_from + args.seconds
    cpu0 = None
    n = 0
    try:
        while True:
            now = time.monotonic()
            if cpu0 is None and now >= measure_from:
                cpu0, t0, recv0 = cpu_ticks(args.pid), now, received
                threads0 = thread_ticks(args.pid)
            if now >= stop:
                break
            payload = payloads[n % len(payloads)]
            for i, s in enumerate(socks):
                hdr = RTP_HEADER.pack(RTP_V2, pt, n & 0xFFFF, (n * SAMPLES_PER_TICK) & 0xFFFFFFFF, 0x5000 + i)
                s.send(hdr + payload)
                sent += 1
                while True:
                    try:
                        s.recv(2048)
                        received += 1
                    except (BlockingIOError, ConnectionRefusedError):
                        break
            n += 1
            time.sleep(max(0.0, start + n * TICK_S - time.monotonic()))
        cpu1, t1 = cpu_ticks(args.pid), time.monotonic()
        threads1 = thread_ticks(args.pid)
    finally:
        for s in socks:
            s.close()
    cpu_s = (cpu1 - cpu0) / hz
    wall = t1 - t0
    ticks = wall / TICK_S
    print(json.dumps({
        "participants": len(parts), "wall_s": round(wall, 2), "janus_cpu_s": round(cpu_s, 2),
        "janus_cpu_pct_of_one_core": round(100 * cpu_s / wall, 1),
        "us_per_participant_per_tick": round(1e6 * cpu_s / ticks / len(parts), 1),
        "rtp_sent": sent, "rtp_received": received,
        "rtp_received_per_participant_per_s": round((received - recv0) / wall / len(parts), 1),
        "us_per_participant_per_tick_by_thread": {
            k: round(1e6 * (v - threads0.get(k, 0)) / hz / ticks / len(parts), 1)
            for k, v in sorted(threads1.items()) if v - threads0.get(k, 0) > 0}}))


if __name__ == "__main__":
    sys.exit(main())
