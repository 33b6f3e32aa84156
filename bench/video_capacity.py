#!/usr/bin/env python3
# The video capacity benchmark's runner (bench/video_capacity.sh calls it): Confab against a hand-built ffmpeg MCU.
"""Runs N video conferences at once on Confab and, in the same invocation, on a hand-built ffmpeg MCU
(one ffmpeg process per conference: decode the same inputs, xstack, one libx264 encode, RTP out),
measures the CPU each spends per second of conference and whether it keeps real time, and can
search for the most conferences the node sustains.

Inputs (prepared once, cached in --inputs-dir): 16 distinct 640x360 30 fps H.264 clips of 10 s
(constrained baseline, no B-frames, zerolatency, an IDR every 2 s, 600 kbit/s, in-band SPS/PPS
before every IDR, MP4 with a 90 kHz track clock) made from lavfi sources that move (testsrc2,
mandelbrot, life, cellauto, sierpinski, gradients, smptehdbars with a moving overlay, ...), each
hue-shifted and some with temporal noise, so the encoders get camera-like work, not flat colour.
Conference c, participant i plays clip (c * S + i) mod 16 on both systems.

ffmpeg (system `ffmpeg`): per conference `ffmpeg -threads 1 -re -stream_loop -1 -i clipK ... ->
[scale=TILE:flags=bilinear] -> xstack -> libx264 -preset P -tune zerolatency -profile:v baseline
-b:v B -maxrate B -bufsize B -g (30 x 10 s) -sc_threshold 0 -bf 0 -threads 1 -> RTP`: decoders,
filter graph and encoder each on one thread, as Confab's are; `ffmpeg-auto` is the same with
ffmpeg's default threading (x264 sliced threads, frame-threaded decoders) to show the difference.
The encoded stream goes through the tee muxer to as many RTP destinations as Confab sends to
(S senders + 1 receiver; --baseline-outputs), so both pay the same network sends; one of them is
the counting sink, the others are bound sockets that are never read (the kernel drops).

Confab (system `confab`): confab-mcu is started fresh per run; per conference POST
/v1/conferences {"layout"}, S participants {"video": {"codec": "h264", "payload_type": 96,
"remote": "127.0.0.1:P"}} whose senders are `ffmpeg -re -stream_loop -1 -i clipK -c copy -f rtp
rtp://LOCAL?localport=P&rtcpport=LOCAL_PORT&pkt_size=1200` (RTCP to the same port, RFC 5761; ffmpeg
sends its RTCP from P+1, which the MCU may count as wrong_source: harmless), and one video-only
receiver participant whose remote is the counting sink. The MCU sends the composite to all S+1.
By default one ffmpeg per conference sends all its participants' clips (an input and an RTP output
each, its own local port and SSRC): the same packets as one process per participant (SENDERS=participant)
for about half the senders' CPU, which on a 2-core node is taken from the MCU.
Only the MCU process's CPU is the result; the senders' CPU is shown apart (machine load).

CPU: utime+stime of the measured processes (all threads) from /proc/PID/stat over the window,
after the warm-up, in CPU-seconds per second; per conference = that / N.

Real time (the same sink criterion for both systems, over the window):
  - every conference's receiver gets >= --min-fps frames per second (RTP marker bits), and
  - ffmpeg: every process's encoded frames per second (its -progress frame=) >= --min-speed x fps,
  - confab: no /metrics counter with "video" in its name and skip/late/drop/overrun/error in it
    grows, and media worker late ticks <= 0.1 % of ticks (video workers, worker="vN", are reported as
    confab_vworker_*: their ticks wait for encodes by design).
"""
import argparse
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLIP_COUNT = 16
CLIP_W, CLIP_H, CLIP_FPS, CLIP_SECONDS, CLIP_KBPS, CLIP_GOP = 640, 360, 30, 10, 600, 60
RTP_HEADER_LEN = 12
RTP_MARKER = 0x80
RTCP_PT_FIRST, RTCP_PT_LAST = 192, 223  # RFC 5761 4: these second-byte values are RTCP
LATE_TICK_LIMIT = 0.001
COMPILER_POLL_S = 10
COMPILER_WAIT_S = 600
BAD_VIDEO_COUNTER = re.compile(r"skip|late|drop|overrun|error|fail", re.I)

# (lavfi source, hue shift in degrees, temporal noise strength); every one moves.
CLIP_SOURCES = [
    ("testsrc2=s={s}:r={r}", 0, 0),
    ("mandelbrot=s={s}:r={r}:maxiter=200:end_scale=0.05", 0, 3),
    ("life=s={s}:r={r}:mold=10:ratio=0.12:death_color=#203040:life_color=#e0a040:seed=7", 0, 4),
    ("smptehdbars=s={s}:r={r}[b];testsrc2=s=200x150:r={r}[o];[b][o]overlay=x='mod(t*140,W-w)':y='(H-h)/2+80*sin(t*2)'",
     0, 3),
    ("cellauto=s={s}:r={r}:rule=110:random_fill_ratio=0.5:seed=3,scroll=v=0.004", 0, 0),
    ("sierpinski=s={s}:r={r}:type=triangle:jump=2", 0, 4),
    ("gradients=s={s}:r={r}:speed=0.02:nb_colors=5:seed=11", 0, 6),
    ("testsrc=s={s}:r={r},rotate=a='t*0.4':c=#102030", 0, 3),
    ("testsrc2=s={s}:r={r},hflip", 120, 5),
    ("mandelbrot=s={s}:r={r}:maxiter=150:start_x=-0.743643887:start_y=0.131825904:end_scale=0.02", 200, 0),
    ("life=s={s}:r={r}:mold=25:ratio=0.2:death_color=#400020:life_color=#40c0ff:seed=99", 90, 0),
    ("smptebars=s={s}:r={r}[b];mandelbrot=s=240x180:r={r}[o];[b][o]overlay=x='(W-w)/2+200*sin(t)':y='mod(t*60,H-h)'",
     60, 4),
    ("cellauto=s={s}:r={r}:rule=30:random_fill_ratio=0.3:seed=5,scroll=h=0.003", 240, 3),
    ("sierpinski=s={s}:r={r}:type=carpet:jump=3", 300, 3),
    ("gradients=s={s}:r={r}:speed=0.05:nb_colors=3:seed=23:type=radial", 150, 5),
    ("rgbtestsrc=s={s}:r={r}[b];testsrc2=s=320x180:r={r}[o];[b][o]overlay=x='mod(t*90,W-w)':y='mod(t*50,H-h)'",
     30, 6),
]


def env(name, default):
    return os.environ.get(name, default)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", default=env("SYSTEMS", "ffmpeg,confab"),
                   help="comma list: ffmpeg (single-threaded like Confab), ffmpeg-auto (ffmpeg's default threads), confab")
    p.add_argument("--layouts", default=env("LAYOUT", "2x2"), help="comma list of 2x2, 4x4 (also 3x3, 1x1)")
    p.add_argument("--mode", choices=["fixed", "search"], default=env("MODE", "fixed"),
                   help="fixed: one run at --conferences; search: capacity search starting there")
    p.add_argument("--conferences", type=int, default=int(env("CONFERENCES", "1")), help="conferences at once")
    p.add_argument("--max-conferences", type=int, default=int(env("MAX_CONFERENCES", "40")))
    p.add_argument("--max-runs", type=int, default=int(env("MAX_RUNS", "8")), help="runs per search at most")
    p.add_argument("--retries", type=int, default=int(env("RETRIES", "1")),
                   help="a search run that fails is repeated this often; real time if any repetition is")
    p.add_argument("--duration", type=float, default=float(env("DURATION", "20")), help="seconds measured")
    p.add_argument("--warmup", type=float, default=float(env("WARMUP", "5")), help="seconds before measuring")
    p.add_argument("--out-size", default=env("OUT_SIZE", "1280x720"), help="composite size (1280x720, 640x360)")
    p.add_argument("--fps", type=int, default=int(env("FPS", "30")))
    p.add_argument("--bitrate-kbps", type=int, default=int(env("BITRATE_KBPS", "1500")))
    p.add_argument("--preset", default=env("PRESET", "veryfast"))
    p.add_argument("--keyint-s", type=float, default=float(env("KEYINT_S", "10")),
                   help="IDR interval (Confab's VideoEncoderSettings::keyframe_interval_ms)")
    p.add_argument("--baseline-outputs", type=int, default=int(env("BASELINE_OUTPUTS", "0")),
                   help="RTP destinations of each ffmpeg conference (0: participants + 1, as Confab sends)")
    p.add_argument("--min-fps", type=float, default=float(env("MIN_FPS", "29")))
    p.add_argument("--min-speed", type=float, default=float(env("MIN_SPEED", "0.98")))
    p.add_argument("--inputs-dir", default=env("INPUTS_DIR", "build/video-inputs"))
    p.add_argument("--build-dir", default=env("BUILD_DIR", "build/release"))
    p.add_argument("--mcu", default=env("CONFAB_MCU", ""), help="confab-mcu binary (default BUILD_DIR/mcu/confab-mcu)")
    p.add_argument("--mcu-args", default=env("MCU_ARGS", ""), help="extra confab-mcu flags (e.g. '--workers 2')")
    p.add_argument("--rest-port", type=int, default=int(env("CONFAB_REST_PORT", "18480")))
    p.add_argument("--telnet-port", type=int, default=int(env("CONFAB_TELNET_PORT", "14423")))
    p.add_argument("--media-ports", default=env("CONFAB_MEDIA_PORTS", "20000-29999"))
    p.add_argument("--senders", choices=["participant", "conference"], default=env("SENDERS", "conference"),
                   help="confab's senders: one ffmpeg per conference holding all its inputs (default: about half "
                        "the senders' CPU of one per participant, the same packets), or one ffmpeg per participant")
    p.add_argument("--loadgen-nice", type=int, default=int(env("LOADGEN_NICE", "19")),
                   help="nice value of confab's sender ffmpegs: on a real node they are other machines, here they "
                        "share the CPUs and must not delay the MCU's media workers (whose ticks are measured)")
    p.add_argument("--sink-port-base", type=int, default=int(env("SINK_PORT_BASE", "31000")),
                   help="receivers' ports: base + 2 x conference (ffmpeg's extra outputs from base + 500)")
    p.add_argument("--sender-port-base", type=int, default=int(env("SENDER_PORT_BASE", "12000")),
                   help="senders' local ports: base + 2 x participant (their RTCP leaves from +1)")
    p.add_argument("--results", default=env("RESULTS", ""), help="JSON lines (default build/video_capacity-DATE.jsonl)")
    p.add_argument("--profile", action="store_true", default=env("PROFILE", "") == "1",
                   help="after the runs, perf record -g the MCU of one run and report its shares by shared object")
    p.add_argument("--profile-system", default=env("PROFILE_SYSTEM", "confab"))
    p.add_argument("--profile-conferences", type=int, default=int(env("PROFILE_CONFERENCES", "0")),
                   help="0: the capacity found by this invocation's search, else --conferences")
    p.add_argument("--profile-seconds", type=float, default=float(env("PROFILE_SECONDS", "15")))
    p.add_argument("--fail-counters", default=env("FAIL_COUNTERS", BAD_VIDEO_COUNTER.pattern),
                   help="regex: a confab /metrics counter with 'video' in its name matching it must not grow")
    p.add_argument("--late-tick-limit", type=float, default=float(env("LATE_TICK_LIMIT", str(LATE_TICK_LIMIT))),
                   help="confab: media worker late ticks per tick allowed over the window (1: report only)")
    p.add_argument("--create-extra", default=env("CREATE_EXTRA", ""),
                   help="JSON object merged into confab's POST /v1/conferences (OUT_SIZE, FPS and BITRATE_KBPS "
                        "already go into its \"video\" settings)")
    p.add_argument("--join-extra", default=env("JOIN_EXTRA", ""),
                   help="JSON object merged into every participant's \"video\" object on join")
    p.add_argument("--compiler-wait", type=float, default=float(env("COMPILER_WAIT", str(COMPILER_WAIT_S))),
                   help="seconds a run waits for running compilers to finish (then measures anyway, noted)")
    p.add_argument("--prepare-only", action="store_true", help="make the inputs and stop")
    return p.parse_args()


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def wait_for_quiet_machine(wait_s):
    """Benchmarks run only while no compiler does (the machine's rule): polls every 10 s, wait_s at most."""
    deadline = time.monotonic() + wait_s
    while True:
        n = subprocess.run(["pgrep", "-c", "-x", "cc1plus|cc1|clang|clang\\+\\+"], capture_output=True,
                           text=True).stdout.strip() or "0"
        if n == "0":
            return True
        if time.monotonic() >= deadline:
            log(f"video: {n} compiler(s) still running after {wait_s:g} s; measuring anyway (noted)")
            return False
        log(f"video: {n} compiler(s) running; waiting")
        time.sleep(COMPILER_POLL_S)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------------------------- inputs

def clip_path(args, k):
    return os.path.join(args.inputs_dir, f"clip{k:02d}.mp4")


def prepare_inputs(args):
    """Encodes the clips that are missing (a clip is kept once written whole: .part then rename)."""
    os.makedirs(args.inputs_dir, exist_ok=True)
    size = f"{CLIP_W}x{CLIP_H}"
    for k, (src, hue, noise) in enumerate(CLIP_SOURCES[:CLIP_COUNT]):
        out = clip_path(args, k)
        if os.path.exists(out):
            continue
        graph = src.format(s=size, r=CLIP_FPS)
        post = ["format=yuv420p"]
        if hue:
            post.append(f"hue=h={hue}")
        if noise:
            post.append(f"noise=alls={noise}:allf=t")
        # The source may be a graph of several sources ([b][o]overlay): the tail filters go on its output.
        graph = f"{graph},{','.join(post)}[out0]" if "[" in graph else f"{graph},{','.join(post)}"
        part = out + ".part.mp4"
        # -flags -global_header: x264 repeats SPS/PPS in front of every IDR, in band, so a sender's
        # `-c copy` RTP stream carries them (RFC 6184 STAP-A) and a decoder can start at any IDR.
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", graph,
               "-t", str(CLIP_SECONDS), "-an", "-c:v", "libx264", "-flags:v", "-global_header",
               "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
               "-b:v", f"{CLIP_KBPS}k", "-maxrate", f"{CLIP_KBPS}k", "-bufsize", f"{CLIP_KBPS}k",
               "-g", str(CLIP_GOP), "-keyint_min", str(CLIP_GOP), "-sc_threshold", "0", "-bf", "0",
               "-r", str(CLIP_FPS), "-video_track_timescale", "90000", part]
        log(f"video: making input {out} from {src.split('=')[0]} (hue {hue}, noise {noise})")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"video: ffmpeg could not make {out}: {r.stderr.strip()}")
        os.replace(part, out)
    return [clip_path(args, k) for k in range(CLIP_COUNT)]


def describe_inputs(clips):
    """One line per clip: kbit/s, frames, IDRs (ffprobe), to show the inputs are what they claim."""
    rows = []
    for c in clips:
        r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                            "stream=profile,width,height,avg_frame_rate,bit_rate,nb_frames", "-of", "json", c],
                           capture_output=True, text=True)
        try:
            s = json.loads(r.stdout)["streams"][0]
            rows.append(f"{os.path.basename(c)} {s['width']}x{s['height']} {s['avg_frame_rate']} {s['profile']} "
                        f"{int(s.get('bit_rate', 0)) // 1000} kbit/s {s.get('nb_frames', '?')} frames")
        except (KeyError, IndexError, ValueError):
            rows.append(f"{os.path.basename(c)}: ffprobe failed")
    return rows


# ---------------------------------------------------------------------------------------------- measuring

def proc_cpu_seconds(pid):
    """utime + stime of a process and all its threads, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)
    except (OSError, IndexError, ValueError):
        return None


def cpu_of(pids):
    vals = [proc_cpu_seconds(p) for p in pids]
    return None if any(v is None for v in vals) else sum(vals)


def bind_or_exit(s, port):
    try:
        s.bind(("127.0.0.1", port))
    except OSError as e:
        sys.exit(f"video: cannot bind 127.0.0.1:{port} ({e}); choose another SINK_PORT_BASE")


class Sink:
    """Counting RTP receivers: one socket per conference, read by one thread; per socket packets, bytes,
    RTCP packets and frames (RTP marker bits, RFC 6184 5.1: the last packet of an access unit)."""

    def __init__(self, ports):
        self.socks = []
        self.counts = {}
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            bind_or_exit(s, port)
            s.setblocking(False)
            self.socks.append(s)
            self.counts[s.fileno()] = [0, 0, 0, 0]  # rtp packets, rtp bytes, rtcp packets, frames
        self.lock = threading.Lock()
        self.stop_flag = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        fds = {s.fileno(): s for s in self.socks}
        while not self.stop_flag:
            ready, _, _ = select.select(list(fds), [], [], 0.2)
            for fd in ready:
                s = fds[fd]
                while True:
                    try:
                        pkt = s.recv(2048)
                    except BlockingIOError:
                        break
                    if len(pkt) < RTP_HEADER_LEN:
                        continue
                    with self.lock:
                        c = self.counts[fd]
                        if RTCP_PT_FIRST <= pkt[1] <= RTCP_PT_LAST:
                            c[2] += 1
                            continue
                        c[0] += 1
                        c[1] += len(pkt)
                        if pkt[1] & RTP_MARKER:
                            c[3] += 1

    def snapshot(self):
        with self.lock:
            return [list(self.counts[s.fileno()]) for s in self.socks]

    def close(self):
        self.stop_flag = True
        self.thread.join(2)
        for s in self.socks:
            s.close()


def bind_drop_sockets(ports):
    """Bound and never read: what is sent there costs the sender its send and is dropped by the kernel."""
    socks = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        bind_or_exit(s, port)
        socks.append(s)
    return socks


def stop_process(proc, sig=signal.SIGTERM, wait=5):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------------------------- layouts

def grid_of(layout):
    m = re.fullmatch(r"(\d)x\1", layout)
    if not m:
        sys.exit(f"video: layout {layout!r} (2x2, 3x3, 4x4, 1x1)")
    return int(m.group(1))


def out_size(args):
    w, h = (int(v) for v in args.out_size.split("x"))
    return w, h


def clips_of_conference(clips, c, size):
    return [clips[(c * size + i) % len(clips)] for i in range(size)]


# ---------------------------------------------------------------------------------------------- ffmpeg MCU

def ffmpeg_conference_cmd(args, inputs, layout, threaded, dests, progress_path):
    """One conference as one ffmpeg process: decode, (scale,) xstack, one libx264 encode, RTP out."""
    grid = grid_of(layout)
    w, h = out_size(args)
    tw, th = w // grid, h // grid
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-nostats",
           "-progress", progress_path, "-stats_period", "1"]
    for clip in inputs:
        if not threaded:
            cmd += ["-threads", "1"]  # decoder threads: Confab's decoders run on one thread each
        cmd += ["-re", "-stream_loop", "-1", "-i", clip]
    chains, labels = [], []
    for i in range(len(inputs)):
        if (tw, th) == (CLIP_W, CLIP_H):
            labels.append(f"[{i}:v]")
        else:
            chains.append(f"[{i}:v]scale={tw}:{th}:flags=bilinear[s{i}]")  # Confab's compositor: SWS_BILINEAR
            labels.append(f"[s{i}]")
    cells = [f"{(i % grid) * tw}_{(i // grid) * th}" for i in range(len(inputs))]
    if len(inputs) == 1:
        chains.append(f"{labels[0]}null[v]")
    else:
        chains.append(f"{''.join(labels)}xstack=inputs={len(inputs)}:layout={'|'.join(cells)}:fill=black[v]")
    graph = ";".join(chains)
    if not threaded:
        cmd += ["-filter_complex_threads", "1"]
    cmd += ["-filter_complex", graph, "-map", "[v]", "-an",
            "-c:v", "libx264", "-preset", args.preset, "-tune", "zerolatency", "-profile:v", "baseline",
            "-pix_fmt", "yuv420p", "-b:v", f"{args.bitrate_kbps}k", "-maxrate", f"{args.bitrate_kbps}k",
            "-bufsize", f"{args.bitrate_kbps}k",  # VBV of 1 s, as VideoEncoderSettings::vbv_buffer_ms
            "-g", str(int(args.fps * args.keyint_s)), "-sc_threshold", "0", "-bf", "0", "-r", str(args.fps)]
    if not threaded:
        cmd += ["-threads:v", "1", "-filter_threads", "1"]
    urls = [f"rtp://127.0.0.1:{p}?pkt_size=1200" for p in dests]
    if len(urls) == 1:
        cmd += ["-payload_type", "96", "-f", "rtp", urls[0]]
    else:
        # One encode, packetized and sent to every destination: what an MCU's receivers cost it.
        cmd += ["-f", "tee", "|".join(f"[f=rtp:payload_type=96]{u}" for u in urls)]
    return cmd


def read_progress_frames(path):
    """The last `frame=` of an ffmpeg -progress file (0 before the first block)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return 0
    m = re.findall(r"^frame=(\d+)$", text, re.M)
    return int(m[-1]) if m else 0


# ---------------------------------------------------------------------------------------------- confab

def sender_cmd(group):
    """ffmpeg sending clips to the MCU as they are (-c copy, real time, looped): one RTP output per
    (clip, local port, MCU address) of the group, from the local port the participant was joined with;
    RTCP goes to the MCU's RTP port (RFC 5761 muxing) and leaves from local port + 1."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"]
    for clip, _, _ in group:
        cmd += ["-re", "-stream_loop", "-1", "-i", clip]
    for i, (_, port, local) in enumerate(group):
        mcu_port = local.rsplit(":", 1)[1]
        cmd += ["-map", f"{i}:v", "-c", "copy", "-payload_type", "96", "-f", "rtp",
                f"rtp://{local}?localport={port}&rtcpport={mcu_port}&pkt_size=1200"]
    return cmd


def http(method, url, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            ctype = r.headers.get("Content-Type", "")
            return r.status, (json.loads(raw) if raw and "json" in ctype else raw.decode(errors="replace"))
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def parse_metrics(text):
    """Prometheus text to {name: summed value over labels} and the raw sample lines."""
    sums = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        name = m.group(1)
        if name.startswith("confab_worker_") and 'worker="v' in (m.group(2) or ""):
            # Video workers' ticks are late by design while they encode (their real-time measure is
            # confab_video_frames_skipped_total); only the media workers' lateness says whether
            # video delayed audio.
            name = name.replace("confab_worker_", "confab_vworker_", 1)
        sums[name] = max(sums.get(name, v), v) if name.endswith("_max") else sums.get(name, 0.0) + v
    return sums


def interesting_metric(name):
    return "video" in name or "tick" in name


class ConfabServer:
    def __init__(self, args, log_path):
        self.args = args
        self.log_path = log_path
        self.proc = None
        self.base = f"http://127.0.0.1:{args.rest_port}"

    def start(self):
        a = self.args
        binary = a.mcu or os.path.join(a.build_dir, "mcu/confab-mcu")
        if not os.access(binary, os.X_OK):
            sys.exit(f"video: no confab-mcu at {binary} (build it, or set CONFAB_MCU)")
        if self._port_busy():
            sys.exit(f"video: something already answers on 127.0.0.1:{a.rest_port}; set CONFAB_REST_PORT")
        cmd = [binary, "--rest-listen", f"127.0.0.1:{a.rest_port}", "--telnet-listen", f"127.0.0.1:{a.telnet_port}",
               "--media-ports", a.media_ports, "--max-conferences", "100000", "--stats-interval", "0",
               "--log-level", "warn"] + a.mcu_args.split()
        self.proc = subprocess.Popen(cmd, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=raise_fd_limit)
        deadline = time.monotonic() + 10
        while True:
            try:
                if http("GET", self.base + "/healthz", timeout=1)[0] == 200:
                    return self.proc.pid
            except (urllib.error.URLError, OSError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"video: confab-mcu did not start; see {self.log_path}")
            time.sleep(0.05)

    def _port_busy(self):
        s = socket.socket()
        try:
            return s.connect_ex(("127.0.0.1", self.args.rest_port)) == 0
        finally:
            s.close()

    def metrics(self):
        try:
            status, text = http("GET", self.base + "/metrics")
            return text if status == 200 and isinstance(text, str) else ""
        except (urllib.error.URLError, OSError):
            return ""

    def stop(self):
        stop_process(self.proc, signal.SIGTERM, 10)
        self.proc = None


# ---------------------------------------------------------------------------------------------- runs

class Runner:
    def __init__(self, args, clips):
        self.args = args
        self.clips = clips
        self.rows = []

    def run(self, system, layout, conferences, perf_out=None):
        quiet = wait_for_quiet_machine(self.args.compiler_wait)
        size = grid_of(layout) ** 2
        if system == "confab":
            row = self._run_confab(layout, size, conferences, perf_out)
        else:
            row = self._run_ffmpeg(system, layout, size, conferences, perf_out)
        row.update(system=system, layout=layout, size=size, conferences=conferences, out_size=self.args.out_size,
                   fps=self.args.fps, bitrate_kbps=self.args.bitrate_kbps, preset=self.args.preset,
                   duration=self.args.duration, warmup=self.args.warmup, compiler_free=quiet,
                   time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self._judge(row)
        self.rows.append(row)
        with open(self.args.results, "a") as f:
            f.write(json.dumps(row) + "\n")
        log("video: " + row_line(row))
        return row

    def _sink_ports(self, conferences):
        return [self.args.sink_port_base + 2 * c for c in range(conferences)]

    def _measure(self, pids, sink, extra_pids, on_start=None, on_end=None, perf_out=None):
        """Warm-up, then the window: CPU of `pids` (the result) and of `extra_pids` (shown apart), sink counts."""
        a = self.args
        time.sleep(a.warmup)
        s0, c0, e0, t0 = sink.snapshot(), cpu_of(pids), cpu_of(extra_pids), time.monotonic()
        if on_start:
            on_start()
        perf = None
        if perf_out:
            perf = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-o", perf_out, "-p", ",".join(map(str, pids)),
                                     "--", "sleep", str(a.profile_seconds)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(a.duration)
        s1, c1, e1, t1 = sink.snapshot(), cpu_of(pids), cpu_of(extra_pids), time.monotonic()
        if on_end:
            on_end()
        if perf:
            try:
                _, err = perf.communicate(timeout=a.profile_seconds + 30)
            except subprocess.TimeoutExpired:
                perf.send_signal(signal.SIGINT)
                _, err = perf.communicate()
            if perf.returncode != 0:
                log(f"video: perf record failed ({perf.returncode}): {err.strip()}")
        wall = t1 - t0
        out = {"window_s": round(wall, 3)}
        if c0 is None or c1 is None:
            out["error"] = "a measured process exited during the run"
            return out
        out["cpu_s_per_s"] = (c1 - c0) / wall
        out["cpu_per_conference"] = out["cpu_s_per_s"] / max(1, len(s0))
        if e0 is not None and e1 is not None and extra_pids:
            out["sender_cpu_s_per_s"] = (e1 - e0) / wall
        per = []
        for a0, a1 in zip(s0, s1):
            per.append({"fps": (a1[3] - a0[3]) / wall, "kbps": (a1[1] - a0[1]) * 8 / wall / 1000,
                        "pps": (a1[0] - a0[0]) / wall, "rtcp": a1[2] - a0[2], "packets_total": a1[0]})
        out["receivers"] = per
        out["sink_fps_min"] = min(p["fps"] for p in per) if per else 0.0
        out["sink_fps_mean"] = sum(p["fps"] for p in per) / len(per) if per else 0.0
        out["sink_kbps_mean"] = sum(p["kbps"] for p in per) / len(per) if per else 0.0
        return out

    def _run_ffmpeg(self, system, layout, size, conferences, perf_out):
        a = self.args
        threaded = system == "ffmpeg-auto"
        run_dir = os.path.join(os.path.dirname(a.results) or ".", "video-ffmpeg")
        os.makedirs(run_dir, exist_ok=True)
        outputs = a.baseline_outputs or size + 1
        sink_ports = self._sink_ports(conferences)
        drop_ports = [a.sink_port_base + 500 + c * outputs + k for c in range(conferences) for k in range(outputs - 1)]
        sink = Sink(sink_ports)
        drops = bind_drop_sockets(drop_ports)
        procs, progress = [], []
        try:
            for c in range(conferences):
                dests = [sink_ports[c]] + drop_ports[c * (outputs - 1):(c + 1) * (outputs - 1)]
                prog = os.path.join(run_dir, f"progress-{c}.txt")
                if os.path.exists(prog):
                    os.remove(prog)
                cmd = ffmpeg_conference_cmd(a, clips_of_conference(self.clips, c, size), layout, threaded, dests, prog)
                if c == 0:
                    log("video: baseline command: " + " ".join(q if re.fullmatch(r"[\w./:=,+-]*", q) else f"'{q}'" for q in cmd))
                errlog = open(os.path.join(run_dir, f"ffmpeg-{c}.log"), "w")
                procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errlog, stdin=subprocess.DEVNULL))
                progress.append(prog)
            frames = {}
            m = self._measure([p.pid for p in procs], sink, [],
                              on_start=lambda: frames.update(start=[read_progress_frames(p) for p in progress]),
                              on_end=lambda: frames.update(end=[read_progress_frames(p) for p in progress]),
                              perf_out=perf_out)
            dead = [i for i, p in enumerate(procs) if p.poll() is not None]
            if dead:
                m["error"] = f"ffmpeg conference(s) {dead} exited early; see {run_dir}/ffmpeg-N.log"
            if "start" in frames and "end" in frames:
                speeds = [(e - s) / m["window_s"] / a.fps for s, e in zip(frames["start"], frames["end"])]
                m["speed_min"] = min(speeds)
                m["speed_mean"] = sum(speeds) / len(speeds)
            m["x264_threads"] = "auto" if threaded else 1
            m["decoder_threads"] = "auto" if threaded else 1
            m["outputs_per_conference"] = outputs
            return m
        finally:
            for p in procs:
                stop_process(p, signal.SIGINT)
            sink.close()
            for s in drops:
                s.close()

    def _run_confab(self, layout, size, conferences, perf_out):
        a = self.args
        run_dir = os.path.join(os.path.dirname(a.results) or ".", "video-confab")
        os.makedirs(run_dir, exist_ok=True)
        server = ConfabServer(a, os.path.join(run_dir, "confab-mcu.log"))
        sink_ports = self._sink_ports(conferences)
        sink = Sink(sink_ports)
        senders = []
        ids = []
        result = {}
        try:
            video_extra = json.loads(a.join_extra) if a.join_extra else {}
            pid = server.start()
            base = server.base
            for c in range(conferences):
                w, h = out_size(a)
                # The same picture as the baseline's: size, frame rate and bit rate per conference.
                body = {"name": f"video-{c}", "layout": layout, "max_participants": size + 1,
                        "video": {"width": w, "height": h, "fps": a.fps, "bitrate": a.bitrate_kbps * 1000}}
                body.update(json.loads(a.create_extra) if a.create_extra else {})
                st, conf = http("POST", base + "/v1/conferences", body)
                if st != 201:
                    return {"error": f"POST /v1/conferences answered {st}: {conf}"}
                joined = []
                for i, clip in enumerate(clips_of_conference(self.clips, c, size)):
                    port = a.sender_port_base + 2 * (c * size + i)
                    st, part = http("POST", f"{base}/v1/conferences/{conf['id']}/participants",
                                    {"name": f"c{c}s{i}", "video": dict(video_extra, codec="h264", payload_type=96,
                                                                         remote=f"127.0.0.1:{port}")})
                    if st != 201:
                        return {"error": f"joining a video sender answered {st}: {part}"}
                    joined.append((clip, port, part["video"]["local"]))
                st, rx = http("POST", f"{base}/v1/conferences/{conf['id']}/participants",
                              {"name": f"c{c}rx", "video": dict(video_extra, codec="h264", payload_type=96,
                                                                 remote=f"127.0.0.1:{sink_ports[c]}")})
                if st != 201:
                    return {"error": f"joining the video receiver answered {st}: {rx}"}
                ids.append((conf["id"], rx["id"]))
                groups = [[j] for j in joined] if a.senders == "participant" else [joined]
                for group in groups:
                    cmd = ["nice", "-n", str(a.loadgen_nice)] + sender_cmd(group)
                    senders.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                                    stderr=open(os.path.join(run_dir, f"sender-{c}-{len(senders)}.log"), "w")))
            metrics = {}
            m = self._measure([pid], sink, [s.pid for s in senders],
                              on_start=lambda: metrics.update(start=server.metrics()),
                              on_end=lambda: metrics.update(end=server.metrics()),
                              perf_out=perf_out)
            result.update(m)
            result["senders"] = f"{len(senders)} ffmpeg (one per {a.senders})"
            dead = [i for i, s in enumerate(senders) if s.poll() is not None]
            if dead:
                result["error"] = f"{len(dead)} sender(s) exited early; see {run_dir}/sender-*.log"
            m0, m1 = parse_metrics(metrics.get("start", "")), parse_metrics(metrics.get("end", ""))
            result["metrics_delta"] = {k: m1[k] - m0.get(k, 0.0) for k in m1 if interesting_metric(k) and not k.endswith("_max")}
            result["metrics_end"] = {k: v for k, v in m1.items() if interesting_metric(k)}
            result["video_metrics_lines"] = [l for l in metrics.get("end", "").splitlines()
                                             if not l.startswith("#") and interesting_metric(l.split("{")[0].split(" ")[0])]
            if m.get("receivers") and all(r["packets_total"] == 0 for r in m["receivers"]):
                # Diagnose: did the MCU get the senders' packets, and did it send anything?
                conf_id, rx_id = ids[0]
                st, conf = http("GET", f"{base}/v1/conferences/{conf_id}")
                video_in = [p.get("video", {}).get("stats", {}).get("packets_in") for p in conf.get("participants", [])] \
                    if isinstance(conf, dict) else []
                video_metrics = sorted({k for k in m1 if "video" in k})
                result["error"] = (
                    f"NO VIDEO OUT: the receiver sink 127.0.0.1:{sink_ports[0]} got no RTP from confab-mcu in "
                    f"{a.warmup + a.duration:g} s (conference {conf_id}: video packets_in per participant {video_in}, "
                    f"the last is the receiver; /metrics video counters: {', '.join(video_metrics) or 'none'}). "
                    "The MCU's video path (decode, composite, encode, send) is not wired in this build, "
                    "or the receiver participant is not sent the composite")
            return result
        finally:
            for s in senders:
                stop_process(s, signal.SIGINT)
            server.stop()
            sink.close()

    def _judge(self, row):
        a = self.args
        reasons = []
        if "error" in row:
            reasons.append(row["error"])
        if "sink_fps_min" in row and row["sink_fps_min"] < a.min_fps:
            reasons.append(f"receiver fps {row['sink_fps_min']:.1f} < {a.min_fps:g}")
        if "speed_min" in row and row["speed_min"] < a.min_speed:
            reasons.append(f"ffmpeg speed {row['speed_min']:.3f} < {a.min_speed:g}")
        d = row.get("metrics_delta", {})
        for name, v in d.items():
            if "video" in name and re.search(a.fail_counters, name, re.I) and v > 0:
                reasons.append(f"{name} +{v:g}")
        ticks, late = d.get("confab_worker_ticks_total", 0), d.get("confab_worker_late_ticks_total", 0)
        if ticks and late > a.late_tick_limit * ticks:
            reasons.append(f"late ticks {late:g}/{ticks:g}")
        row["reasons"] = reasons
        row["real_time"] = not reasons

    def search(self, system, layout):
        """Most conferences in real time: from --conferences, the measured CPU per conference predicts
        the count that fills 95 % of the node's CPUs; then +1 up to a failure, bisection down."""
        a = self.args
        ncpu = os.cpu_count() or 1
        n, best, fail, best_row, runs, tried, first = max(1, a.conferences), 0, None, None, 0, set(), None
        while runs < a.max_runs and n not in tried and n <= a.max_conferences:
            row = self.run(system, layout, n)
            for _ in range(a.retries):
                if row["real_time"] or "NO VIDEO OUT" in " ".join(row["reasons"]):
                    break
                row = self.run(system, layout, n)
            runs += 1
            tried.add(n)
            first = first or row
            if row["real_time"]:
                if n > best:
                    best, best_row = n, row
            else:
                fail = n if fail is None else min(fail, n)
                if "cpu_per_conference" not in row:
                    break  # setup failure: more conferences will not help
            if fail is not None and fail <= best + 1:
                break
            per = row.get("cpu_per_conference")
            guess = int(0.95 * ncpu / per) if per else None
            if fail is None:
                nxt = guess if guess and guess > n and runs == 1 else n + 1
            elif best == 0:
                nxt = max(1, min(fail - 1, guess or fail // 2))
            else:
                nxt = (best + fail) // 2
            n = max(1, min(a.max_conferences, nxt))
        return {"system": system, "layout": layout, "conferences": best, "row": best_row, "probe": first,
                "lowest_failing": fail}


# ---------------------------------------------------------------------------------------------- output

def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def row_line(r):
    verdict = "real time" if r["real_time"] else "NOT real time: " + "; ".join(r["reasons"])
    return (f"{r['system']:<11} {r['layout']} x{r['conferences']:<3} cpu {fmt(r.get('cpu_s_per_s'), '.3f')} s/s "
            f"({fmt(r.get('cpu_per_conference'), '.3f')}/conf) rx fps min {fmt(r.get('sink_fps_min'), '.1f')} "
            f"kbit/s {fmt(r.get('sink_kbps_mean'), '.0f')} speed {fmt(r.get('speed_min'), '.3f')} "
            f"senders {fmt(r.get('sender_cpu_s_per_s'), '.3f')} s/s : {verdict}")


def print_tables(args, rows, summaries):
    print(f"\n## Runs ({args.out_size} composite, {args.fps} fps, libx264 {args.preset} zerolatency baseline "
          f"{args.bitrate_kbps} kbit/s; window {args.duration:g} s after {args.warmup:g} s; CPU = utime+stime of the "
          f"MCU process(es) per wall second)\n")
    print("| system | layout | conferences | CPU s/s | CPU per conference | x264 threads | receiver fps min / mean |"
          " receiver kbit/s | ffmpeg speed min | senders' CPU s/s | real time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['layout']} | {r['conferences']} | {fmt(r.get('cpu_s_per_s'), '.3f')} | "
              f"{fmt(r.get('cpu_per_conference'), '.3f')} | {r.get('x264_threads', 1)} | "
              f"{fmt(r.get('sink_fps_min'), '.1f')} / {fmt(r.get('sink_fps_mean'), '.1f')} | "
              f"{fmt(r.get('sink_kbps_mean'), '.0f')} | {fmt(r.get('speed_min'), '.3f')} | "
              f"{fmt(r.get('sender_cpu_s_per_s'), '.3f')} | {'yes' if r['real_time'] else 'no: ' + '; '.join(r['reasons'])} |")
    for r in rows:
        if r["system"] == "confab" and (r.get("video_metrics_lines") or r.get("metrics_delta")):
            print(f"\n/metrics of confab {r['layout']} x{r['conferences']} (video and tick lines at the window's end;"
                  f" deltas over the window):\n")
            for line in r.get("video_metrics_lines", []):
                print(f"    {line}")
            for k, v in sorted(r.get("metrics_delta", {}).items()):
                print(f"    delta {k} {v:g}")
    # Confab against ffmpeg at the same load (same layout and conference count).
    pairs = []
    for r in rows:
        if r["system"] != "confab" or "cpu_per_conference" not in r or "error" in r:
            continue  # a Confab that sent no video spent no encode: no ratio
        for b in rows:
            if b["system"].startswith("ffmpeg") and b["layout"] == r["layout"] and b["conferences"] == r["conferences"] \
                    and "cpu_per_conference" in b and "error" not in b:
                pairs.append((r, b))
    if pairs:
        print("\n## Confab / ffmpeg CPU per conference at the same load (target <= 1.15x)\n")
        print("| layout | conferences | baseline | baseline CPU/conf | confab CPU/conf | ratio | both real time |")
        print("|---|---|---|---|---|---|---|")
        for r, b in pairs:
            print(f"| {r['layout']} | {r['conferences']} | {b['system']} | {b['cpu_per_conference']:.3f} | "
                  f"{r['cpu_per_conference']:.3f} | {r['cpu_per_conference'] / b['cpu_per_conference']:.2f}x | "
                  f"{'yes' if r['real_time'] and b['real_time'] else 'no'} |")
    by = {}
    for r in rows:
        if "cpu_per_conference" in r and r["real_time"]:
            by.setdefault((r["system"], r["layout"]), r)
    for system in sorted({s for s, _ in by}):
        c2, c4 = by.get((system, "2x2")), by.get((system, "4x4"))
        if c2 and c4:
            print(f"\n{system}: 4x4 / 2x2 CPU per conference = {c4['cpu_per_conference']:.3f} / "
                  f"{c2['cpu_per_conference']:.3f} = {c4['cpu_per_conference'] / c2['cpu_per_conference']:.2f}x (target < 2)")
    if summaries:
        print(f"\n## Capacity (most conferences at once in real time on this {os.cpu_count()}-CPU node)\n")
        print("| system | layout | conferences | CPU per conference there | first failing |")
        print("|---|---|---|---|---|")
        for s in summaries:
            r = s["row"] or {}
            print(f"| {s['system']} | {s['layout']} | {s['conferences']} | {fmt(r.get('cpu_per_conference'), '.3f')} | "
                  f"{s['lowest_failing'] if s['lowest_failing'] is not None else 'not reached'} |")


DSO_GROUPS = [("libavcodec", "libavcodec"), ("libx264", "libx264"), ("libswscale", "libswscale"),
              ("libavutil", "libavutil"), ("libavfilter", "libavfilter"), ("libavformat", "libavformat"),
              ("kernel", "[kernel"), ("libc", "libc.so"), ("jemalloc", "libjemalloc"), ("confab-mcu", "confab-mcu"), ("ffmpeg", "ffmpeg")]
CODEC_GROUPS = ("libavcodec", "libx264", "libswscale")


def profile(args, runner, summaries):
    system = args.profile_system
    layout = args.layouts.split(",")[0]
    c = args.profile_conferences
    if c <= 0:
        found = next((s for s in summaries if s["system"] == system and s["layout"] == layout), None)
        c = max(1, found["conferences"]) if found else max(1, args.conferences)
    perf_out = os.path.join(os.path.dirname(args.results) or ".", "video_capacity.perf.data")
    log(f"video: profiling {system} {layout} x {c} (perf record -g -F 999 for {args.profile_seconds:g} s of the window)")
    row = runner.run(system, layout, c, perf_out=perf_out)
    if not os.path.exists(perf_out):
        print("\n## Profile: perf record wrote nothing (see the log above)")
        return
    report = subprocess.run(["perf", "report", "-i", perf_out, "--no-children", "--sort", "dso", "--stdio", "-g", "none"],
                            capture_output=True, text=True).stdout
    dsos = []
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S.*)$", line)
        if m:
            dsos.append((float(m.group(1)), m.group(2).strip()))
    groups = {}
    for share, dso in dsos:
        g = next((name for name, key in DSO_GROUPS if key in dso), "other")
        groups[g] = groups.get(g, 0.0) + share
    codec = sum(groups.get(g, 0.0) for g in CODEC_GROUPS)
    syms = subprocess.run(["perf", "report", "-i", perf_out, "--no-children", "--sort", "dso,sym", "--stdio", "-g", "none"],
                          capture_output=True, text=True).stdout
    outside = []
    for line in syms.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(\S+)", line)
        if m and not any(k in m.group(2) for k in CODEC_GROUPS) and len(outside) < 15:
            outside.append((float(m.group(1)), m.group(2), m.group(3)))
    print(f"\n## Profile: {system} {layout}, {c} conference(s), {'real time' if row.get('real_time') else 'NOT real time'}, "
          f"{fmt(row.get('cpu_per_conference'), '.3f')} CPU-s/s per conference; perf record -g -F 999 -p PID, "
          f"{args.profile_seconds:g} s inside the measured window\n")
    print("| share of samples | group |")
    print("|---|---|")
    for g, share in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"| {share:.1f} % | {g} |")
    print(f"\nlibavcodec + libx264 + libswscale: {codec:.1f} % of the samples (target >= 85 %)\n")
    print("| share | shared object |")
    print("|---|---|")
    for share, dso in dsos[:10]:
        print(f"| {share:.1f} % | {dso} |")
    print("\nTop 15 symbols outside the codec libraries:\n")
    print("| share | object | symbol |")
    print("|---|---|---|")
    for share, dso, sym in outside:
        print(f"| {share:.2f} % | {dso} | {sym} |")
    print(f"\nperf data: {perf_out} (perf report -i {perf_out} --no-children --sort dso,sym)")
    with open(args.results, "a") as f:
        f.write(json.dumps({"profile": system, "layout": layout, "conferences": c, "groups": groups,
                            "codec_share_pct": codec, "dsos": dsos[:20]}) + "\n")


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds like Ctrl-C: children are stopped
    args = parse_args()
    os.chdir(ROOT)
    if not args.results:
        args.results = os.path.join("build", time.strftime("video_capacity-%Y%m%dT%H%M%S.jsonl"))
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            sys.exit(f"video: {tool} is missing (apt-get install ffmpeg)")
    clips = prepare_inputs(args)
    if args.prepare_only:
        print("\n".join(describe_inputs(clips)))
        return
    runner = Runner(args, clips)
    summaries = []
    systems = [s for s in args.systems.split(",") if s]
    for s in systems:
        if s not in ("ffmpeg", "ffmpeg-auto", "confab"):
            sys.exit(f"video: unknown system {s!r} (ffmpeg, ffmpeg-auto, confab)")
    for layout in [l for l in args.layouts.split(",") if l]:
        grid_of(layout)
        for system in systems:
            if args.mode == "search":
                summaries.append(runner.search(system, layout))
            else:
                runner.run(system, layout, args.conferences)
    if args.profile:
        profile(args, runner, summaries)
    print_tables(args, runner.rows, summaries)
    print(f"\nraw JSON lines: {args.results}")


if __name__ == "__main__":
    main()
