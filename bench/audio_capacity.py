#!/usr/bin/env python3
# The audio capacity benchmark's runner (bench/audio_capacity.sh calls it): Confab and Janus
# AudioBridge on one core each run, confab-audio-load on the other, capacity search, table, profile.
"""Runs confab-audio-load against a freshly started server per run and searches, for each system
and conference size S, the most conferences C of S participants the server keeps in real time.

Real time (one criterion for every system; counted over the measured window):
  - loss < 0.1 % (sequence gaps at the receivers, RFC 3550 A.3), and
  - late packets (more than 60 ms after the previous one at a receiver) <= 0.1 % of received, and
  - received >= 99.5 % of participants x ticks (a server that skips whole ticks sends fewer packets
    without sequence gaps; 0.5 % leaves room for the window's edges), and
  - confab only (Janus exports no tick figures): worker late ticks (started > 2 ms late) <= 0.1 %.
A run where the generator itself fell behind (its late send rounds > 1 % of ticks) fails too and
says so: the client, not the server, was short of CPU. A failing load is run again (--retries, 1)
and counts as real time when any of its runs is: other processes can only make a run fail.

Per core: the server runs under `taskset -c SERVER_CPU` (confab with --workers 1 --no-pin, so its
one worker and its control threads share that core; Janus with all its threads), the generator
under `taskset -c LOAD_CPU`. Capacity participants are then participants per core.
"""
import argparse
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK_US = 20000  # one 20 ms mixer tick
LOSS_LIMIT_PCT = 0.1
LATE_LIMIT = 0.001  # late packets per received packet; late ticks per tick
MIN_RECEIVED_PCT = 99.5
GENERATOR_LATE_LIMIT = 0.01  # send rounds > 2 ms late per round: a VM's odd stall is no verdict
COMPILER_POLL_S = 10
COMPILER_WAIT_S = 600


def env(name, default):
    return os.environ.get(name, default)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", default=env("SYSTEMS", "confab4,confab-default,janus4"),
                   help="comma list: confabN (mix complexity N sent on create), confab-default (the daemon's "
                        "--opus-complexity default), janusN (AudioBridge join quality N)")
    p.add_argument("--sizes", default=env("SIZES", "5,20,100,1000"), help="conference sizes")
    p.add_argument("--janus-max-size", type=int, default=int(env("JANUS_MAX_SIZE", "100")),
                   help="sizes above this are skipped for Janus (one core cannot host a room of 1000)")
    p.add_argument("--mode", choices=["search", "fixed"], default=env("MODE", "search"),
                   help="search: capacity search; fixed: one run per system and size at --conferences")
    p.add_argument("--conferences", type=int, default=int(env("CONFERENCES", "0")),
                   help="fixed mode: conferences per run (0: the probe load, --probe-participants / S)")
    p.add_argument("--probe-participants", type=int, default=int(env("PROBE_PARTICIPANTS", "100")),
                   help="participants of a search's first run (rounded to whole conferences, at least one)")
    p.add_argument("--max-participants", type=int, default=int(env("MAX_PARTICIPANTS", "3000")),
                   help="the search does not go beyond this many participants (the generator's core)")
    p.add_argument("--max-runs", type=int, default=int(env("MAX_RUNS", "7")), help="runs per search at most")
    p.add_argument("--duration", type=float, default=float(env("DURATION", "10")), help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=float(env("WARMUP", "3")), help="seconds sent before measuring")
    p.add_argument("--talkers", type=int, default=int(env("TALKERS", "2")), help="talkers per conference")
    p.add_argument("--retries", type=int, default=int(env("RETRIES", "1")),
                   help="a load that fails is run again this many times; it is real time if any run is (noise "
                        "from other processes on a shared machine only ever makes a run fail)")
    p.add_argument("--nice", type=int, default=int(env("NICE", "0")),
                   help="nice value of server and generator (e.g. -10 on a shared machine; needs root)")
    p.add_argument("--rt", type=int, default=int(env("RT", "0")),
                   help="run server and generator SCHED_FIFO at this priority (1..99; 0 = off): on a shared "
                        "machine other processes on the server's CPU otherwise delay ticks by a scheduler slice; "
                        "the kernel's RT throttling still leaves them 5 %%. Confab only: Janus stalls under it")
    p.add_argument("--server-cpu", default=env("SERVER_CPU", "1"), help="CPU the server runs on")
    p.add_argument("--load-cpu", default=env("LOAD_CPU", "0"), help="CPU the load generator runs on")
    p.add_argument("--build-dir", default=env("BUILD_DIR", "build/release"))
    p.add_argument("--speech", default=env("SPEECH", "build/speech.wav"))
    p.add_argument("--results", default=env("RESULTS", ""),
                   help="JSON lines file (default build/audio_capacity-DATE.jsonl)")
    p.add_argument("--rest-port", type=int, default=int(env("CONFAB_REST_PORT", "18380")))
    p.add_argument("--telnet-port", type=int, default=int(env("CONFAB_TELNET_PORT", "14323")))
    p.add_argument("--media-ports", default=env("CONFAB_MEDIA_PORTS", "10000-19999"))
    p.add_argument("--janus-http-port", type=int, default=int(env("JANUS_HTTP_PORT", "18388")))
    p.add_argument("--janus-confdir", default=env("JANUS_CONFDIR", "build/janus-capacity"))
    p.add_argument("--profile", action="store_true", default=env("PROFILE", "") == "1",
                   help="after the runs (or alone with --systems ''), perf-profile confab at capacity")
    p.add_argument("--profile-system", default=env("PROFILE_SYSTEM", "confab4"))
    p.add_argument("--profile-size", type=int, default=int(env("PROFILE_SIZE", "20")))
    p.add_argument("--profile-conferences", type=int, default=int(env("PROFILE_CONFERENCES", "0")),
                   help="0: the capacity found by this invocation's search, else a search first")
    return p.parse_args()


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def wait_for_quiet_machine():
    """Benchmarks only run while no compiler does (the machine's rule; gcc's cc1plus/cc1 and clang):
    polls every 10 s, 10 min at most."""
    deadline = time.monotonic() + COMPILER_WAIT_S
    while True:
        n = subprocess.run(["pgrep", "-c", "-x", "cc1plus|cc1|clang|clang\\+\\+"], capture_output=True, text=True).stdout.strip() or "0"
        if n == "0":
            return True
        if time.monotonic() >= deadline:
            log(f"capacity: {n} compiler(s) still running after {COMPILER_WAIT_S} s; measuring anyway (noted)")
            return False
        log(f"capacity: {n} compiler(s) running; waiting")
        time.sleep(COMPILER_POLL_S)


def system_spec(name):
    """(kind, complexity or None, label)."""
    m = re.fullmatch(r"(confab|janus)(\d+|-default)", name)
    if not m:
        sys.exit(f"capacity: unknown system {name!r} (confabN, confab-default, janusN)")
    kind, level = m.group(1), m.group(2)
    if level == "-default":
        if kind == "janus":
            sys.exit("capacity: janus-default is janus4 (AudioBridge's default quality)")
        return kind, None, "default"
    return kind, int(level), level


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """One freshly started confab-mcu or Janus, pinned to the server CPU."""

    def __init__(self, args, kind, complexity):
        self.args, self.kind, self.complexity = args, kind, complexity
        self.proc = None
        self.pid = None

    def start(self):
        if self.kind == "confab":
            self._start_confab()
        else:
            self._start_janus()
        return self.pid

    def _start_confab(self):
        a = self.args
        rest = f"127.0.0.1:{a.rest_port}"
        if http_ok(f"http://{rest}/healthz"):
            sys.exit(f"capacity: something already answers on {rest}; set CONFAB_REST_PORT")
        cmd = sched_prefix(a) + ["taskset", "-c", a.server_cpu, os.path.join(a.build_dir, "mcu/confab-mcu"), "--workers", "1",
               "--no-pin", "--rest-listen", rest, "--telnet-listen", f"127.0.0.1:{a.telnet_port}",
               "--media-ports", a.media_ports, "--max-conferences", "100000", "--stats-interval", "0",
               "--log-level", "warn"]
        self.log_path = os.path.join(os.path.dirname(a.results), "confab-mcu.log")
        self.proc = subprocess.Popen(cmd, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=raise_fd_limit)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 10
        while not http_ok(f"http://{rest}/healthz"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"capacity: confab-mcu did not start; see {self.log_path}")
            time.sleep(0.05)

    def _janus_env(self):
        e = dict(os.environ)
        e.update(JANUS_WRAPPER=" ".join(sched_prefix(self.args) + ["taskset", "-c", self.args.server_cpu]),
                 JANUS_DEBUG_LEVEL="3",
                 JANUS_HTTP_PORT=str(self.args.janus_http_port))
        return e

    def _start_janus(self):
        if self.args.rt:
            # Seen: under SCHED_FIFO on one core Janus's own threads starve each other and a setup of
            # 100 participants never finished. Compare under NICE instead.
            sys.exit("capacity: --rt is for confab alone (Janus stalls under SCHED_FIFO); use --nice")
        out = subprocess.run([os.path.join(ROOT, "bench/janus/run.sh"), "start", self.args.janus_confdir],
                             env=self._janus_env(), capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"capacity: janus did not start: {out.stderr.strip()}")
        self.pid = int(out.stdout.strip().splitlines()[-1])

    def stop(self):
        if self.kind == "confab":
            if self.proc and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        elif self.pid:
            subprocess.run([os.path.join(ROOT, "bench/janus/run.sh"), "stop", self.args.janus_confdir],
                           env=self._janus_env(), check=False)
        self.pid = None


def sched_prefix(args):
    """nice and/or SCHED_FIFO for server and generator alike (threads inherit both)."""
    prefix = ["nice", "-n", str(args.nice)] if args.nice else []
    if args.rt:
        prefix += ["chrt", "-f", str(args.rt)]
    return prefix


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def generator_cmd(args, kind, complexity, size, conferences, pid):
    cmd = sched_prefix(args) + ["taskset", "-c", args.load_cpu, os.path.join(args.build_dir, "bench/confab-audio-load"),
           "--speech", args.speech, "--conferences", str(conferences), "--size", str(size),
           "--talkers", str(args.talkers), "--duration", str(args.duration), "--warmup", str(args.warmup),
           "--pid", str(pid), "--json"]
    if kind == "confab":
        cmd += ["--rest", f"127.0.0.1:{args.rest_port}"]
        if complexity is not None:
            cmd += ["--mcu-complexity", str(complexity)]
    else:
        cmd += ["--janus", f"http://127.0.0.1:{args.janus_http_port}/janus", "--janus-quality", str(complexity)]
    return cmd


def judge(j):
    """The reasons the run was not real time (empty: it was)."""
    reasons = []
    if j["loss_pct"] >= LOSS_LIMIT_PCT:
        reasons.append(f"loss {j['loss_pct']:.3f}%")
    if j["late_packets"] > LATE_LIMIT * max(j["received_packets"], 1):
        reasons.append(f"late packets {j['late_packets']}")
    if j["received_pct_of_expected"] < MIN_RECEIVED_PCT:
        reasons.append(f"received {j['received_pct_of_expected']:.2f}% of expected")
    if j.get("server_ticks") and j["server_late_ticks"] > LATE_LIMIT * j["server_ticks"]:
        reasons.append(f"late ticks {j['server_late_ticks']:.0f}/{j['server_ticks']:.0f}")
    if j["generator_late_ticks"] > GENERATOR_LATE_LIMIT * j["ticks"]:
        reasons.append(f"generator late {j['generator_late_ticks']} (client short of CPU)")
    return reasons


class Runner:
    def __init__(self, args):
        self.args = args
        self.rows = []

    def run(self, system, size, conferences, perf_out=None):
        kind, complexity, label = system_spec(system)
        quiet = wait_for_quiet_machine()
        server = Server(self.args, kind, complexity)
        pid = server.start()
        perf = gen = None
        try:
            cmd = generator_cmd(self.args, kind, complexity, size, conferences, pid)
            gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=raise_fd_limit)
            if perf_out:
                # From the generator's start to its end: setup (REST calls) is a small part of it.
                perf = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-p", str(pid), "-o", perf_out],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            timeout = 120 + self.args.warmup + self.args.duration + 0.05 * size * conferences
            try:
                out, err = gen.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                gen.send_signal(signal.SIGINT)
                out, err = gen.communicate()
            if perf:
                perf.send_signal(signal.SIGINT)
                perf.wait()
        finally:
            # Also on SIGTERM/Ctrl-C: nothing this run started outlives it.
            for child, sig in ((perf, signal.SIGINT), (gen, signal.SIGINT)):
                if child and child.poll() is None:
                    child.send_signal(sig)
                    try:
                        child.wait(10)
                    except subprocess.TimeoutExpired:
                        child.kill()
                        child.wait()
            server.stop()
        line = next((l for l in reversed(out.splitlines()) if l.startswith("{")), None)
        if gen.returncode != 0 or line is None:
            log(f"capacity: {system} size {size} x {conferences}: generator failed ({gen.returncode}): {err.strip()}")
            row = {"system": system, "kind": kind, "complexity_label": label, "size": size,
                   "conferences": conferences, "participants": size * conferences, "error": err.strip(),
                   "real_time": False, "reasons": ["setup failed"]}
        else:
            row = json.loads(line)
            reasons = judge(row)
            row.update(system=system, kind=kind, complexity_label=label, real_time=not reasons, reasons=reasons,
                       compiler_free=quiet, nice=self.args.nice, rt=self.args.rt, server_cpu=self.args.server_cpu, load_cpu=self.args.load_cpu,
                       time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.rows.append(row)
        with open(self.args.results, "a") as f:
            f.write(json.dumps(row) + "\n")
        log("capacity: " + row_line(row))
        return row

    def search(self, system, size):
        """Largest C with a real-time run; model-guided: the probe's us/participant/tick predicts the
        capacity (90 % of a core), then steps of 20 % up until a failure, then bisection to 5 %."""
        a = self.args
        cap = max(1, a.max_participants // size)
        c = min(cap, max(1, round(a.probe_participants / size)))
        best, fail, best_row, runs, tested = 0, None, None, 0, {}
        probe_row = None
        while runs < a.max_runs and c not in tested:
            row = self.run(system, size, c)
            for _ in range(a.retries):
                if row["real_time"]:
                    break
                row = self.run(system, size, c)
            runs += 1
            tested[c] = row["real_time"]
            probe_row = probe_row or row
            if row["real_time"] and (fail is None or c < fail):
                if c > best:
                    best, best_row = c, row
            elif not row["real_time"]:
                fail = c if fail is None else min(fail, c)
            if fail is not None and fail <= best + max(1, math.floor(best * 0.05)):
                break
            if fail == 1:
                break
            us = row.get("server_us_per_participant_tick")
            if runs == 1 and us:
                guess = int(0.9 * TICK_US / us / size)
                nxt = guess if (row["real_time"] and guess > c) or (not row["real_time"] and 0 < guess < c) else None
            else:
                nxt = None
            if nxt is None:
                if fail is None:
                    if best >= cap:
                        break
                    nxt = max(best + 1, math.ceil(best * 1.2))
                elif best == 0:
                    nxt = max(1, fail // 2)
                else:
                    nxt = (best + fail) // 2
            c = min(cap, max(1, nxt))
        return {"system": system, "size": size, "conferences": best, "participants": best * size,
                "row": best_row, "probe": probe_row, "lowest_failing": fail, "capped": fail is None and best >= cap}


def row_line(r):
    if "error" in r:
        return f"{r['system']:<15} S={r['size']:<5} C={r['conferences']:<4} P={r['participants']:<5} SETUP FAILED"
    verdict = "real time" if r["real_time"] else "NOT real time: " + ", ".join(r["reasons"])
    return (f"{r['system']:<15} S={r['size']:<5} C={r['conferences']:<4} P={r['participants']:<5} "
            f"{r.get('server_us_per_participant_tick', float('nan')):7.1f} us/p/tick "
            f"cpu {r.get('server_cpu_pct', float('nan')):5.1f}% loss {r['loss_pct']:.3f}% "
            f"late {r['late_packets']} gen-cpu {r['generator_cpu_pct']:.0f}% : {verdict}")


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def late_text(r):
    s = f"{r['late_packets']}"
    if r.get("server_ticks"):
        s += f" / {r['server_late_ticks']:.0f} ticks"
    return s


def print_tables(args, summaries, rows):
    print("\n## Runs (each line one run; real time = loss < 0.1 %, late packets <= 0.1 %, received >= 99.5 %,"
          " confab late ticks <= 0.1 %)\n")
    print("| size | system | complexity | conferences | participants | us/participant/tick | server CPU % |"
          " loss % | late pkts / late ticks | real time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['size']} | {r['kind']} | {r['complexity_label']} | {r['conferences']} | {r['participants']} |"
                  f" - | - | - | - | setup failed |")
            continue
        print(f"| {r['size']} | {r['kind']} | {r['complexity_label']} | {r['conferences']} | {r['participants']} | "
              f"{fmt(r.get('server_us_per_participant_tick'), '.1f')} | {fmt(r.get('server_cpu_pct'), '.1f')} | "
              f"{r['loss_pct']:.3f} | {late_text(r)} | {'yes' if r['real_time'] else 'no: ' + '; '.join(r['reasons'])} |")
    if not summaries:
        return
    print("\n## Capacity on one core (largest real-time run of the search)\n")
    print("| size | system | complexity | conferences | participants per core | us/participant/tick |"
          " server CPU % | loss % | late pkts / late ticks | first failing conferences |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in summaries:
        r = s["row"]
        kind, _, label = system_spec(s["system"])
        more = "not reached (cap)" if s["capped"] else (str(s["lowest_failing"]) if s["lowest_failing"] else "-")
        if r is None:
            p = s["probe"]
            print(f"| {s['size']} | {kind} | {label} | 0 | < {s['size']} | "
                  f"{fmt(p.get('server_us_per_participant_tick'), '.1f')} (at {p['participants']}, not real time) | "
                  f"{fmt(p.get('server_cpu_pct'), '.1f')} | {fmt(p.get('loss_pct'), '.3f')} | - | {more} |")
            continue
        print(f"| {s['size']} | {kind} | {label} | {s['conferences']} | {s['participants']} | "
              f"{fmt(r.get('server_us_per_participant_tick'), '.1f')} | {fmt(r.get('server_cpu_pct'), '.1f')} | "
              f"{r['loss_pct']:.3f} | {late_text(r)} | {more} |")
    # Ratios per size: every confab system against every janus system of the same size.
    by = {(s["system"], s["size"]): s for s in summaries}
    janus = sorted({s["system"] for s in summaries if s["system"].startswith("janus")})
    confab = sorted({s["system"] for s in summaries if s["system"].startswith("confab")})
    if janus and confab:
        print("\n## Confab / Janus, participants per core (capacity) and CPU per participant (at the probe load)\n")
        print("| size | confab | janus | capacity ratio | us/p/tick Janus / Confab at the probe load |")
        print("|---|---|---|---|---|")
        for size in sorted({s["size"] for s in summaries}):
            for cs in confab:
                for js in janus:
                    c, j = by.get((cs, size)), by.get((js, size))
                    if not c or not j:
                        continue
                    if j["participants"] > 0:
                        ratio = f"{c['participants'] / j['participants']:.1f}x ({c['participants']} / {j['participants']})"
                    else:
                        ratio = f"Janus < 1 conference; Confab {c['participants']}"
                    cu = c["probe"].get("server_us_per_participant_tick")
                    ju = j["probe"].get("server_us_per_participant_tick")
                    same = c["probe"]["participants"] == j["probe"]["participants"]
                    cost = f"{ju / cu:.1f}x ({ju:.0f} / {cu:.1f} us at {c['probe']['participants']})" \
                        if cu and ju and same else "-"
                    print(f"| {size} | {cs} | {js} | {ratio} | {cost} |")


def profile(args, runner, summaries):
    system, size = args.profile_system, args.profile_size
    kind, _, _ = system_spec(system)
    if kind != "confab":
        sys.exit("capacity: --profile profiles confab only")
    c = args.profile_conferences
    if c <= 0:
        found = next((s for s in summaries if s["system"] == system and s["size"] == size), None)
        if found is None:
            found = runner.search(system, size)
            summaries.append(found)
        c = max(1, found["conferences"])
    perf_out = os.path.join(os.path.dirname(args.results), "audio_capacity.perf.data")
    log(f"capacity: profiling {system} size {size} x {c} under perf record -g")
    row = runner.run(system, size, c, perf_out=perf_out)
    report = subprocess.run(["perf", "report", "-i", perf_out, "--no-children", "--sort", "dso", "--stdio",
                             "-g", "none"], capture_output=True, text=True).stdout
    dsos = []
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S.*)$", line)
        if m:
            dsos.append((float(m.group(1)), m.group(2).strip()))
    syms = subprocess.run(["perf", "report", "-i", perf_out, "--no-children", "--sort", "dso,sym", "--stdio",
                           "-g", "none"], capture_output=True, text=True).stdout
    # Debian's libopus is stripped: its internal functions show as addresses, so the top symbols
    # are listed with libopus as one line, then what is outside it (the plumbing to look at).
    outside = []
    prefix_share = 0.0
    for line in syms.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(\S+)", line)
        if m:
            share, dso, sym = float(m.group(1)), m.group(2), m.group(3)
            if re.match(r"(opus_|silk_|celt_)", sym):
                prefix_share += share
            if "libopus" in dso:
                continue
            if len(outside) < 15:
                outside.append((share, dso, sym))
    opus = sum(s for s, d in dsos if "libopus" in d)
    print(f"\n## Profile: {system}, {c} conferences of {size} ({c * size} participants), "
          f"{'real time' if row.get('real_time') else 'NOT real time'}, "
          f"{fmt(row.get('server_us_per_participant_tick'), '.1f')} us/participant/tick, "
          f"perf record -g -F 999 -p PID over the whole run (setup included)\n")
    print("| share of samples | shared object |")
    print("|---|---|")
    for share, dso in dsos[:8]:
        print(f"| {share:.1f} % | {dso} |")
    print(f"\nlibopus (libopus.so): {opus:.1f} % of the MCU's samples "
          f"(symbols opus_/silk_/celt_ in any object: {prefix_share:.1f} %)\n")
    print("Top 15 symbols outside libopus (libopus itself is stripped: its functions are addresses):\n")
    print("| share | object | symbol |")
    print("|---|---|---|")
    for share, dso, sym in outside:
        print(f"| {share:.2f} % | {dso} | {sym} |")
    print(f"\nperf data: {perf_out} (perf report -i {perf_out} --no-children --sort dso,sym)")


def main():
    # SIGTERM (e.g. from timeout) unwinds like Ctrl-C, so the servers and generators are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    os.chdir(ROOT)
    if not args.results:
        args.results = os.path.join("build", time.strftime("audio_capacity-%Y%m%dT%H%M%S.jsonl"))
    os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
    runner = Runner(args)
    summaries = []
    systems = [s for s in args.systems.split(",") if s]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    for system in systems:
        kind, _, _ = system_spec(system)
        for size in sizes:
            if kind == "janus" and size > args.janus_max_size:
                log(f"capacity: {system} size {size} skipped (JANUS_MAX_SIZE={args.janus_max_size})")
                continue
            if args.mode == "search":
                summaries.append(runner.search(system, size))
            else:
                c = args.conferences or max(1, round(args.probe_participants / size))
                runner.run(system, size, c)
    if args.profile:
        profile(args, runner, summaries)
    print_tables(args, summaries, runner.rows)
    print(f"\nraw JSON lines: {args.results}")


if __name__ == "__main__":
    main()
