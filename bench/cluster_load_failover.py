#!/usr/bin/env python3
"""The failover half of bench/cluster_load.sh: how long a dead node's conferences are unreachable.

Creates --count conferences through one allocator (--create), picks the node hosting the most of
them, SIGKILLs it (its pid from --node ID=PID) and measures, from the kill:
  node_down         each allocator's `event=node_down node=ID` line (its log timestamp)
  node_failed_over  the `event=node_failed_over node=ID ...` line of whichever allocator moved them
  served            every one of the node's conferences answers GET through the other allocator
                    (--poll) with 200 and a node other than the dead one (polled every --poll-ms)
Prints one line per figure; exits 1 if something did not happen within --timeout seconds.

  cluster_load_failover.py --create 127.0.0.1:P1 --poll 127.0.0.1:P2 --log A1.log --log A2.log \
      --node a=PID --node b=PID --node c=PID [--count 50] [--poll-ms 50] [--timeout 30]
"""
import argparse
import http.client
import json
import os
import re
import signal
import sys
import time
from datetime import datetime


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--create", required=True, help="HOST:PORT of the allocator the conferences are created through")
    p.add_argument("--poll", required=True, help="HOST:PORT of the allocator polled after the kill")
    p.add_argument("--log", action="append", default=[], help="an allocator's log file (repeat; same order as named)")
    p.add_argument("--node", action="append", default=[], help="ID=PID of a cluster node (repeat)")
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--poll-ms", type=int, default=50)
    p.add_argument("--timeout", type=float, default=30.0)
    return p.parse_args()


class Api:
    """One keep-alive HTTP connection; reconnects after any error."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.conn = None

    def request(self, method, path, body=None):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self.conn.request(method, path, body=body, headers=headers)
                res = self.conn.getresponse()
                data = res.read()
                return res.status, data
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    return None, b""
        return None, b""


# spdlog's "%Y-%m-%dT%H:%M:%S.%e%z": 2026-11-26T12:23:21.770+00:00
TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d\d:?\d\d) ")


def log_time(line):
    m = TIMESTAMP.match(line)
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class LogTail:
    """New lines of a log file since construction."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path)
        self.partial = ""

    def lines(self):
        with open(self.path, "r", errors="replace") as f:
            f.seek(self.offset)
            text = f.read()
            self.offset = f.tell()
        text = self.partial + text
        *complete, self.partial = text.split("\n")
        return complete


def main():
    args = parse_args()
    nodes = {}
    for spec in args.node:
        node_id, _, pid = spec.partition("=")
        nodes[node_id] = int(pid)
    creator, poller = Api(args.create), Api(args.poll)

    placed = {}  # conference id -> node
    for i in range(args.count):
        status, body = creator.request("POST", "/v1/conferences", json.dumps({"name": f"failover-{i}"}))
        if status != 201:
            print(f"failover: create {i} through {args.create} answered {status}: {body[:200]!r}", file=sys.stderr)
            return 1
        conference = json.loads(body)
        placed[conference["id"]] = conference.get("node", "")
    per_node = {}
    for node in placed.values():
        per_node[node] = per_node.get(node, 0) + 1
    spread = " ".join(f"{n}={c}" for n, c in sorted(per_node.items()))
    victim = max(sorted(per_node), key=lambda n: per_node[n])
    if victim not in nodes:
        print(f"failover: conferences landed on node {victim!r}, which is not one of {sorted(nodes)}", file=sys.stderr)
        return 1
    victims = sorted(i for i, n in placed.items() if n == victim)
    print(f"failover: {args.count} conferences created through {args.create}: {spread}")
    print(f"failover: SIGKILL node {victim} (pid {nodes[victim]}), hosting {len(victims)}")

    tails = [LogTail(path) for path in args.log]
    killed_at = time.time()
    os.kill(nodes[victim], signal.SIGKILL)

    down = [None] * len(tails)  # per allocator: log time of node_down
    failed_over = None  # (log time, allocator index, the line's fields)
    moved_lines = 0
    served = {}  # conference id -> wall time it first answered from another node
    served_at = None
    polls = errors = 0
    down_re = re.compile(rf"event=node_down node={re.escape(victim)}(\s|$)")
    over_re = re.compile(rf"event=node_failed_over node={re.escape(victim)} (.*)$")
    moved_re = re.compile(rf"event=conference_failed_over id=\d+ from={re.escape(victim)} ")
    deadline = killed_at + args.timeout
    while time.time() < deadline:
        for index, tail in enumerate(tails):
            for line in tail.lines():
                if down[index] is None and down_re.search(line):
                    down[index] = log_time(line)
                if moved_re.search(line):
                    moved_lines += 1
                m = over_re.search(line)
                if m and failed_over is None:
                    failed_over = (log_time(line), index, m.group(1).strip())
        if served_at is None:
            polls += 1
            for conference in victims:
                if conference in served:
                    continue
                status, body = poller.request("GET", f"/v1/conferences/{conference}")
                node = None
                if status == 200:
                    try:
                        node = json.loads(body).get("node")
                    except ValueError:
                        node = None
                if status == 200 and node and node != victim:
                    served[conference] = time.time()
                else:
                    errors += 1
            if len(served) == len(victims):
                served_at = time.time()
        if served_at is not None and failed_over is not None and all(d is not None for d in down):
            break
        time.sleep(args.poll_ms / 1000.0)

    def ms(t):
        return "never" if t is None else f"{(t - killed_at) * 1000:.0f} ms"

    ok = True
    first_down = min((d for d in down if d is not None), default=None)
    per_allocator = ", ".join(f"allocator {i + 1}: {ms(d)}" for i, d in enumerate(down))
    print(f"failover: kill -> node_down          {ms(first_down):>9}   ({per_allocator}; log timestamps)")
    if failed_over is None:
        print(f"failover: kill -> node_failed_over   {'never':>9}   ({moved_lines} conference_failed_over lines)")
        ok = False
    else:
        t, index, fields = failed_over
        print(f"failover: kill -> node_failed_over   {ms(t):>9}   (allocator {index + 1}: {fields}; log timestamp)")
    print(f"failover: kill -> all {len(victims)} served     {ms(served_at):>9}   (GET through {args.poll} answering "
          f"another node; {polls} polls every {args.poll_ms} ms, {errors} answers before that were errors "
          f"or still the dead node)")
    if served:
        first = min(served.values())
        print(f"failover: kill -> first one served   {ms(first):>9}")
    if first_down is None or served_at is None:
        ok = False
    if not ok:
        print(f"failover: not complete within {args.timeout:.0f} s of the kill", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
