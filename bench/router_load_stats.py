#!/usr/bin/env python3
# router_load_stats.py: the call router load benchmark's helpers (bench/router_load.sh): free
# ports, process CPU from /proc, MCU clean-up between runs, and the per-run report from sipp's
# statistics files and the router's log.
#
#   router_load_stats.py ports TCP_COUNT UDP_COUNT   kernel-picked free ports on 127.0.0.1, one line
#   router_load_stats.py media-range COUNT           COUNT consecutive free UDP ports in 10000-19999, "LO-HI"
#   router_load_stats.py cpu NAME=PID ...            "NAME=TICKS ..." (utime + stime, all threads)
#   router_load_stats.py mcu-clean REST_PORT         deletes the MCU's conferences; prints "conferences=N participants=P"
#   router_load_stats.py report [options]            one run's summary line (and a JSON line to --json-out)
#
# What "router time" is (report): for each call the router logs, keyed by its call reference (the
# XMPP plugin logs its leg's; the core's call_accepted line names both),
#   invite_ms  (router sip event=joined)      the INVITE's arrival at the SIP plugin to its 200 OK
#   answer_ms  (router xmpp event=accepted)   the invitation leaving the XMPP plugin to the accept
#                                             arriving there: the callee bot and Prosody, both ways
#   conf_ms    (router event=call_accepted)   the accept reaching the core to the conference being
#                                             there (the allocator plugin's REST create on the MCU)
#   rest_ms    (router sip event=joined)      the SIP plugin's REST join on the MCU (POST of the offer)
#   join_ms    (router sip event=joined)      the join queued to its answer: rest_ms + the wait for
#                                             one of the SIP plugin's HTTP workers (join_queue_ms)
# router time = invite_ms - answer_ms: what the INVITE->200 costs with an instant callee (MCU REST
# calls included: the router waits for them). router own = router time - conf_ms - rest_ms: the
# router's code, threads and queues alone.
import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_ports(kind, count):
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def cmd_ports(args):
    print(" ".join(str(p) for p in free_ports(socket.SOCK_STREAM, args.tcp) + free_ports(socket.SOCK_DGRAM, args.udp)))


def cmd_media_range(args):
    # Below the tests' 20000-31999 and the kernel's ephemeral range; a start that differs per run.
    for attempt in range(200):
        lo = 10000 + ((os.getpid() + attempt * 7919) % ((10000 - args.count) // 100)) * 100
        ok = True
        for port in range(lo, lo + args.count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            print("%d-%d" % (lo, lo + args.count - 1))
            return
    sys.exit("no free range of %d UDP ports in 10000-19999" % args.count)


def ticks_of(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    except (OSError, IndexError, ValueError):
        return -1


def cmd_cpu(args):
    out = []
    for spec in args.procs:
        name, pid = spec.split("=", 1)
        out.append("%s=%d" % (name, ticks_of(pid)))
    print(" ".join(out))


def cmd_mcu_clean(args):
    base = "http://127.0.0.1:%d" % args.rest_port
    with urllib.request.urlopen(base + "/v1/conferences", timeout=10) as r:
        conferences = json.load(r)["conferences"]
    participants = 0
    for c in conferences:
        participants += len(c.get("participants", [])) if isinstance(c.get("participants"), list) else int(
            c.get("participants", 0) or 0)
        req = urllib.request.Request("%s/v1/conferences/%s" % (base, c["id"]), method="DELETE")
        try:
            with urllib.request.urlopen(req, timeout=10):
                pass
        except urllib.error.HTTPError as e:
            if e.code != 404:  # ended by itself meanwhile (end_when_empty)
                raise
    print("conferences=%d participants=%d" % (len(conferences), participants))


def percentile(values, p):
    """Nearest rank (the smallest value with at least p % of the values at or below it)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def parse_kv(line):
    out = {}
    for word in line.split():
        if "=" in word:
            key, value = word.split("=", 1)
            out[key] = value
    return out


def read_router_log(path, offset):
    calls = {}
    answers = {}  # the XMPP plugin logs its leg's reference; the core's call_accepted maps it to the call
    legs = {}
    events = {"call_rejected": {}, "join_failed": 0, "ring_failed": {}, "stale": 0, "warn_or_error": 0}
    with open(path, "rb") as f:
        f.seek(offset)
        for raw in f:
            line = raw.decode("utf-8", "replace")
            if "level=warn" in line or "level=error" in line or "level=critical" in line:
                events["warn_or_error"] += 1
            kv = parse_kv(line)
            ref = kv.get("ref")
            if "router sip event=joined" in line and ref:
                c = calls.setdefault(ref, {})
                for key in ("invite_ms", "join_ms", "rest_ms"):
                    c[key] = float(kv[key])
            elif "router xmpp event=accepted" in line and ref:
                answers[ref] = float(kv["answer_ms"])
            elif "router event=call_accepted" in line and ref and "setup_ms" in kv:
                c = calls.setdefault(ref, {})
                legs[kv.get("leg")] = ref
                for key in ("setup_ms", "ring_ms", "conf_ms"):
                    c[key] = float(kv[key])
            elif "router event=call_rejected" in line:
                error = kv.get("error", "?")
                events["call_rejected"][error] = events["call_rejected"].get(error, 0) + 1
            elif "router sip event=join_failed" in line:
                events["join_failed"] += 1
            elif "router xmpp event=ring_failed" in line:
                reason = kv.get("reason", "?")
                events["ring_failed"][reason] = events["ring_failed"].get(reason, 0) + 1
    for leg, answer_ms in answers.items():
        if leg in legs:
            calls[legs[leg]]["answer_ms"] = answer_ms
    return calls, events


def read_rtt(path):
    """sipp -trace_rtt: "Date_ms;response_time_ms;rtd_no" per call (first line a header)."""
    samples = []
    with open(path) as f:
        for line in f:
            parts = line.strip().split(";")
            if len(parts) < 2:
                continue
            try:
                samples.append((float(parts[0]), float(parts[1])))
            except ValueError:
                continue
    return samples


def read_stat_last(path):
    """The last row of sipp's -trace_stat CSV as a dict (cumulative columns end in (C))."""
    with open(path) as f:
        rows = [line.rstrip("\n").split(";") for line in f if line.strip()]
    header, last = rows[0], rows[-1]
    return dict(zip(header, last))


def ms(value):
    return "%.1f" % value


def cmd_report(args):
    samples = read_rtt(args.rtt)
    e2e = [rt for _, rt in samples]
    stat = read_stat_last(args.stat)
    successful = int(stat.get("SuccessfulCall(C)", "0") or 0)
    failed = int(stat.get("FailedCall(C)", "0") or 0)
    created = int(stat.get("OutgoingCall(C)", stat.get("TotalCallCreated", "0")) or 0)
    # Setups/s: 200 OKs over the span from the first INVITE to the last 200 (rtt dates are the
    # response's arrival).
    setups_per_s = float("nan")
    if len(samples) > 1:
        first_invite = min(d - rt for d, rt in samples)
        last_ok = max(d for d, _ in samples)
        setups_per_s = len(samples) / ((last_ok - first_invite) / 1000.0)
    calls, events = read_router_log(args.router_log, args.log_offset)
    complete = [c for c in calls.values() if all(k in c for k in ("invite_ms", "answer_ms", "conf_ms", "rest_ms"))]
    router = [c["invite_ms"] - c["answer_ms"] for c in complete]
    own = [c["invite_ms"] - c["answer_ms"] - c["conf_ms"] - c["rest_ms"] for c in complete]
    series = {
        "e2e_ms": e2e,
        "router_invite_to_200_ms": [c["invite_ms"] for c in complete],
        "answer_ms": [c["answer_ms"] for c in complete],
        "conf_create_ms": [c["conf_ms"] for c in complete],
        "join_rest_ms": [c["rest_ms"] for c in complete],
        "router_ms": router,
        "router_own_ms": own,
        # Of the router's own time: the join waiting for a free HTTP worker (slow MCU answers fill them).
        "join_queue_ms": [c["join_ms"] - c["rest_ms"] for c in complete],
    }
    cpu = {}
    before = dict(kv.split("=") for kv in args.cpu_before.split())
    after = dict(kv.split("=") for kv in args.cpu_after.split())
    for name, t0 in before.items():
        t1 = int(after.get(name, -1))
        if int(t0) >= 0 and t1 >= 0 and args.wall > 0:
            cpu[name] = round(100.0 * (t1 - int(t0)) / CLK_TCK / args.wall, 1)
    if args.sipp_cpu > 0 and args.wall > 0:
        cpu["sipp"] = round(100.0 * args.sipp_cpu / args.wall, 1)
    result = {
        "rate": args.rate, "concurrent": args.concurrent, "hold_ms": args.hold_ms, "calls": created,
        "successful": successful, "failed": failed, "sipp_exit": args.sipp_exit,
        "setups_per_s": round(setups_per_s, 1), "wall_s": round(args.wall, 2),
        "router_calls_timed": len(complete), "cpu_percent": cpu, "compiler_ran": args.compiler_ran,
        "router_events": events,
    }
    for name, values in series.items():
        result[name] = {"p50": round(percentile(values, 50), 2), "p99": round(percentile(values, 99), 2),
                        "max": round(max(values), 2) if values else None, "n": len(values)}
    if args.json_out:
        with open(args.json_out, "a") as f:
            f.write(json.dumps(result) + "\n")
    p = lambda name, q: ms(result[name][q])  # noqa: E731
    print("rate=%d achieved=%.1f/s calls=%d ok=%d failed=%d | INVITE->200 p50=%s p99=%s ms | router p50=%s p99=%s ms"
          " (own p50=%s p99=%s, of it HTTP queue p50=%s p99=%s; callee answer p50=%s p99=%s; MCU create p50=%s p99=%s, join p50=%s p99=%s)"
          " | cpu%% %s%s" % (
              args.rate, setups_per_s, created, successful, failed, p("e2e_ms", "p50"), p("e2e_ms", "p99"),
              p("router_ms", "p50"), p("router_ms", "p99"), p("router_own_ms", "p50"), p("router_own_ms", "p99"),
              p("join_queue_ms", "p50"), p("join_queue_ms", "p99"),
              p("answer_ms", "p50"), p("answer_ms", "p99"), p("conf_create_ms", "p50"), p("conf_create_ms", "p99"),
              p("join_rest_ms", "p50"), p("join_rest_ms", "p99"),
              " ".join("%s=%s" % kv for kv in cpu.items()),
              " (a compiler ran during the run)" if args.compiler_ran else ""))
    if events["call_rejected"] or events["join_failed"] or events["ring_failed"]:
        print("  router refusals: rejected=%s ring_failed=%s join_failed=%d" % (
            events["call_rejected"], events["ring_failed"], events["join_failed"]))


def main():
    parser = argparse.ArgumentParser(description="router load benchmark helpers")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ports")
    p.add_argument("tcp", type=int)
    p.add_argument("udp", type=int)
    p = sub.add_parser("media-range")
    p.add_argument("count", type=int)
    p = sub.add_parser("cpu")
    p.add_argument("procs", nargs="+")
    p = sub.add_parser("mcu-clean")
    p.add_argument("rest_port", type=int)
    p = sub.add_parser("report")
    p.add_argument("--rate", type=int, required=True)
    p.add_argument("--concurrent", type=int, required=True)
    p.add_argument("--hold-ms", type=int, required=True)
    p.add_argument("--rtt", required=True)
    p.add_argument("--stat", required=True)
    p.add_argument("--router-log", required=True)
    p.add_argument("--log-offset", type=int, default=0)
    p.add_argument("--cpu-before", default="")
    p.add_argument("--cpu-after", default="")
    p.add_argument("--wall", type=float, default=0)
    p.add_argument("--sipp-cpu", type=float, default=0, help="sipp's user + system seconds")
    p.add_argument("--sipp-exit", type=int, default=0)
    p.add_argument("--compiler-ran", action="store_true")
    p.add_argument("--json-out")
    args = parser.parse_args()
    {"ports": cmd_ports, "media-range": cmd_media_range, "cpu": cmd_cpu, "mcu-clean": cmd_mcu_clean,
     "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()
