#!/usr/bin/env python3
"""Writes the seed corpus for fuzz/video_packet_buffer_fuzz.cpp (framing described there)."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus", "video_packet_buffer")

MARKER, NACKS, EXPIRE, FLUSH, RESET = 0x01, 0x02, 0x04, 0x08, 0x10


def config(capacity, jump, retries, grace_ms, max_wait_ms):
    return bytes([capacity - 1, (jump - 1) // 4, (grace_ms << 3) | retries, max_wait_ms])


def record(delta, size, step_ms, flags):
    return struct.pack("!hBBB", delta, size, step_ms, flags)


def write(name, data):
    os.makedirs(ROOT, exist_ok=True)
    assert len(data) < 2048
    with open(os.path.join(ROOT, name), "wb") as f:
        f.write(data)


# In order, one frame of 5 packets per 33 ms.
write("in_order.bin", config(64, 513, 3, 5, 150) +
      b"".join(record(1, 40, 0 if i % 5 else 33, MARKER if i % 5 == 4 else NACKS) for i in range(40)))

# Loss and reorder: 1, 2, 5 (3 and 4 lost), 4, NACKs, 3 retransmitted, then a give-up.
write("loss_nack_repair.bin", config(32, 513, 3, 5, 150) +
      record(1, 20, 1, 0) + record(1, 20, 1, 0) + record(3, 20, 1, NACKS) + record(-1, 20, 3, 0) +
      record(0, 20, 6, NACKS) + record(-1, 20, 20, NACKS) + record(3, 20, 1, 0) + record(2, 20, 50, NACKS) +
      record(1, 20, 50, NACKS) + record(1, 20, 100, EXPIRE) + record(-2, 20, 1, 0))

# Overflow of a small window, a jump just under and just over the restart threshold, a too-large payload.
write("overflow_jumps.bin", config(8, 41, 2, 0, 80) +
      record(1, 10, 1, 0) + record(12, 10, 1, NACKS) + record(1, 10, 1, 0) + record(40, 10, 1, NACKS) +
      record(41, 10, 1, 0) + record(1, 65, 1, 0) + record(1, 10, 1, FLUSH) + record(1, 10, 1, 0))

# Duplicates, a straggler far behind, a backward restart (two in a row), reset().
write("duplicates_restart.bin", config(128, 129, 3, 5, 150) +
      record(1, 8, 1, 0) + record(0, 8, 1, 0) + record(2, 8, 1, 0) + record(0, 8, 1, 0) +
      record(-1000, 8, 1, 0) + record(1000, 8, 1, 0) + record(-2000, 8, 1, 0) + record(1, 8, 1, 0) +
      record(5, 8, 1, RESET) + record(3, 8, 1, NACKS | EXPIRE))
