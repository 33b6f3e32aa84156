#!/usr/bin/env python3
# End-to-end check of Janus AudioBridge plain-RTP participants: ffmpeg tones in, mixes out, decoded.
"""Reads the participant lines printed by rooms.py (stdin or a file) and, for each participant,
plays a different sine tone into Janus and checks that the mix Janus sends back holds the
tones of the other participants of its room, not its own and not those of other rooms.

  bench/janus/rooms.py --rooms 1 --per-room 2 > parts.jsonl &   # keep it running
  bench/janus/media_check.py parts.jsonl --seconds 4

Per participant: ffmpeg encodes sine=f to Opus RTP (pt from the line) and sends it to a relay
socket here; the relay socket bound on participant_port forwards it to janus_ip:janus_port (so the
packets come from the port Janus expects) and forwards what Janus sends back to a second ffmpeg
that decodes it to WAV. Prints packets in/out and the tone levels found; exits 1 if a participant
got nothing back or did not hear its room-mates 20 dB above its own tone and other rooms' tones.
Loopback only, bounded in time.
"""
import argparse
import json
import math
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import wave

TONES_HZ = [440, 660, 880, 1100, 1320, 1540, 1760, 1980]
RATE = 48000


def goertzel_db(samples, freq):
    """Level of one frequency in dB relative to a full-scale sine (Goertzel over all samples)."""
    if not samples:
        return -200.0
    w = 2.0 * math.pi * freq / RATE
    c = 2.0 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + c * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - c * s1 * s2
    amp = 2.0 * math.sqrt(max(power, 0.0)) / len(samples) / 32768.0
    return 20.0 * math.log10(max(amp, 1e-10))


def read_wav(path):
    try:
        with wave.open(path, "rb") as w:
            frames = w.readframes(w.getnframes())
            channels = w.getnchannels()
    except (OSError, EOFError, wave.Error):
        return []
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    return list(samples[::channels])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("parts", nargs="?", default="-", help="rooms.py output (default stdin)")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--relay-base", type=int, default=31000, help="local ports for ffmpeg legs")
    args = ap.parse_args()
    src = sys.stdin if args.parts == "-" else open(args.parts)
    parts = [json.loads(line) for line in src if line.strip()]
    if not parts or len(parts) > len(TONES_HZ):
        sys.exit(f"media_check: need 1..{len(TONES_HZ)} participants, got {len(parts)}")

    tmp = tempfile.mkdtemp(prefix="janus-media-")
    procs = []
    legs = []   # per participant: dict with sockets, counters, files
    try:
        for i, p in enumerate(parts):
            leg = dict(p, tone=TONES_HZ[i], sent=0, received=0)
            # Socket Janus talks to: bound on participant_port, connected to Janus's port.
            leg["rtp"] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            leg["rtp"].bind(("127.0.0.1", p["participant_port"]))
            leg["rtp"].connect((p["janus_ip"], p["janus_port"]))
            # Socket ffmpeg's encoder sends to.
            leg["in_port"] = args.relay_base + 4 * i
            leg["in"] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            leg["in"].bind(("127.0.0.1", leg["in_port"]))
            # Where the mix is forwarded for decoding (ffmpeg listens there, per the SDP).
            leg["dec_port"] = args.relay_base + 4 * i + 2
            leg["out"] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            leg["sdp"] = os.path.join(tmp, f"p{i}.sdp")
            leg["wav"] = os.path.join(tmp, f"p{i}.wav")
            with open(leg["sdp"], "w") as f:
                f.write("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=mix\nc=IN IP4 127.0.0.1\nt=0 0\n"
                        f"m=audio {leg['dec_port']} RTP/AVP {p['payload_type']}\n"
                        f"a=rtpmap:{p['payload_type']} opus/48000/2\n")
            legs.append(leg)
        for leg in legs:
            procs.append(subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
                 "-protocol_whitelist", "file,udp,rtp", "-i", leg["sdp"],
                 "-t", f"{args.seconds:g}", "-ac", "1", "-ar", str(RATE), "-y", leg["wav"]]))
        time.sleep(0.5)   # decoders listening before the first packet can come back
        for i, leg in enumerate(legs):
            procs.append(subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                 "-f", "lavfi", "-i", f"sine=f={leg['tone']}:sample_rate={RATE}:duration={args.seconds:g}",
                 "-af", "volume=0.5", "-c:a", "libopus", "-b:a", "32k", "-ac", "1",
                 "-payload_type", str(leg["payload_type"]), "-ssrc", str(0x1000 + i),
                 "-f", "rtp", f"rtp://127.0.0.1:{leg['in_port']}?localport={leg['in_port'] + 100}"],
                stdout=subprocess.DEVNULL))   # the rtp muxer prints its SDP there

        by_fd = {}
        for leg in legs:
            by_fd[leg["in"].fileno()] = ("in", leg)
            by_fd[leg["rtp"].fileno()] = ("rtp", leg)
        deadline = time.monotonic() + args.seconds + 3.0
        while time.monotonic() < deadline:
            ready, _, _ = select.select(list(by_fd), [], [], 0.1)
            for fd in ready:
                kind, leg = by_fd[fd]
                if kind == "in":
                    leg["rtp"].send(leg["in"].recv(2048))
                    leg["sent"] += 1
                else:
                    try:
                        pkt = leg["rtp"].recv(2048)
                    except ConnectionRefusedError:
                        continue
                    leg["received"] += 1
                    leg["out"].sendto(pkt, ("127.0.0.1", leg["dec_port"]))
        for pr in procs:
            try:
                pr.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pr.kill()
                pr.wait()
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
                pr.wait()
        for leg in legs:
            for k in ("rtp", "in", "out"):
                leg[k].close()

    ok = True
    for leg in legs:
        samples = read_wav(leg["wav"])
        mates = [l["tone"] for l in legs if l is not leg and l["room"] == leg["room"]]
        strangers = [l["tone"] for l in legs if l["room"] != leg["room"]]
        own_db = goertzel_db(samples, leg["tone"])
        mate_db = [goertzel_db(samples, f) for f in mates]
        stranger_db = [goertzel_db(samples, f) for f in strangers]
        # Hears every room-mate, 20 dB above its own tone and above any other room's tone.
        loudest_absent = max([own_db] + stranger_db)
        verdict = leg["received"] > 0 and (not mates or min(mate_db) > loudest_absent + 20.0)
        ok &= verdict
        print(json.dumps({"room": leg["room"], "participant_port": leg["participant_port"],
                          "janus_port": leg["janus_port"], "tone_hz": leg["tone"],
                          "rtp_sent": leg["sent"], "rtp_received": leg["received"],
                          "decoded_s": round(len(samples) / RATE, 2), "own_tone_db": round(own_db, 1),
                          "room_mates_db": {str(f): round(d, 1) for f, d in zip(mates, mate_db)},
                          "other_rooms_db": {str(f): round(d, 1) for f, d in zip(strangers, stranger_db)},
                          "ok": verdict}))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
