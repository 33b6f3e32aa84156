#!/usr/bin/env python3
"""Splits a perf record -g profile of confab-mcu by where the CPU went: libopus; kernel send, its own
part (syscall, UDP/IP, loopback transmit) apart from the delivery into the receiver's socket that
loopback runs in the sender's softirq (the generator's sockets, charged to the MCU); kernel receive
(io_uring); other kernel; user space outside libopus by symbol. Classified by each sample's call
chain. Usage: bench/audio_profile_split.py PERF_DATA [TOP_SYMBOLS]"""
import collections, subprocess, sys
data = sys.argv[1]
out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym,dso"], capture_output=True, text=True).stdout
samples = []
cur = []
for line in out.splitlines():
    if not line.strip():
        if cur: samples.append(cur)
        cur = []
        continue
    if not line.startswith((" ", "\t")):
        if cur: samples.append(cur)
        cur = [line.strip()]
    else:
        cur.append(line.strip())
if cur: samples.append(cur)
cat = collections.Counter(); user = collections.Counter()
for s in samples:
    frames = s[1:]
    if not frames: continue
    top = frames[0]
    syms = " ".join(frames)
    if "libopus" in top:
        cat["libopus"] += 1; continue
    if "[kernel.kallsyms]" in top:
        if any(k in syms for k in ("sys_sendmmsg", "sys_sendto", "sys_sendmsg")):
            if any(k in syms for k in ("process_backlog", "__netif_receive_skb", "ip_local_deliver", "net_rx_action")):
                cat["kernel send: delivery into the receiver (softirq)"] += 1
            else:
                cat["kernel send: own (syscall, UDP/IP, loopback xmit)"] += 1
        elif any(k in syms for k in ("io_recvmsg", "io_uring", "io_issue_sqe", "io_submit", "__io_")):
            # (ring sends, with --io-uring-send ring, land here too)
            cat["kernel receive / io_uring"] += 1
        else:
            cat["kernel other"] += 1
        continue
    cat["user space"] += 1
    parts = top.split(None, 1)
    name = parts[1] if len(parts) > 1 else top
    user[name.rsplit(" (", 1)[0][:90] + "  (" + name.rsplit("(", 1)[-1]] += 1
n = sum(cat.values())
print(f"samples {n}")
for k, v in cat.most_common():
    print(f"{100*v/n:6.2f} %  {k}")
u = cat["user space"]
print(f"\nlibopus share of user-space CPU (libopus + rest of user space): {100*cat['libopus']/(cat['libopus']+u):.1f} %")
print(f"libopus share with zero user-space plumbing (libopus + kernel only): {100*cat['libopus']/(n-u):.1f} %")
print("\nuser space outside libopus, top symbols (% of all samples):")
for k, v in user.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 15):
    print(f"{100*v/n:6.2f} %  {k}")
