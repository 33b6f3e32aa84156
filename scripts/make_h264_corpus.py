#!/usr/bin/env python3
"""Writes the seed corpora for fuzz/h264_depacketizer_fuzz.cpp and fuzz/h264_packetizer_fuzz.cpp (input formats described there)."""
import os
import struct

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus")

MARKER, NEXT_TS, SKIP_SEQ, REPEAT_SEQ, RESET, FLUSH = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
# options byte: bit 0 drop_until_keyframe, bits 1-3: max access unit size 64 << n
OPTIONS_DROP_8K = 0x01 | (7 << 1)
OPTIONS_KEEP_8K = 7 << 1
OPTIONS_DROP_64 = 0x01

SPS = bytes([0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x40])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84, 0x21, 0xA0]) + bytes(range(1, 200))
SLICE = bytes([0x41, 0x9A, 0x02, 0x03])


def chunk(payload, flags=0):
    return struct.pack("!HB", len(payload), flags) + payload


def stap_a(*nals):
    return bytes([0x78]) + b"".join(struct.pack("!H", len(n)) + n for n in nals)


def fu_a(nal, size):
    """FU-A payloads of `nal` with `size` octets of it each."""
    body = nal[1:]
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    out = []
    for i, part in enumerate(parts):
        header = (0x80 if i == 0 else 0) | (0x40 if i == len(parts) - 1 else 0) | (nal[0] & 0x1F)
        out.append(bytes([(nal[0] & 0xE0) | 28, header]) + part)
    return out


def write(name, data, target="h264_depacketizer"):
    root = os.path.join(CORPUS, target)
    os.makedirs(root, exist_ok=True)
    assert len(data) < 2048, name
    with open(os.path.join(root, name), "wb") as f:
        f.write(data)


# A keyframe (STAP-A SPS/PPS + IDR in FU-As), then two P-frames, one single NAL, one STAP-A.
stream = chunk(stap_a(SPS, PPS))
frags = fu_a(IDR, 60)
for i, f in enumerate(frags):
    stream += chunk(f, MARKER if i == len(frags) - 1 else 0)
stream += chunk(SLICE, NEXT_TS | MARKER)
stream += chunk(stap_a(bytes([0x06, 0x05, 0x01, 0x80]), SLICE), NEXT_TS | MARKER)
write("keyframe_then_p.bin", bytes([OPTIONS_DROP_8K]) + stream)

# The same with a lost FU-A fragment, then a recovering keyframe.
lossy = chunk(stap_a(SPS, PPS))
for i, f in enumerate(frags):
    lossy += chunk(f, (SKIP_SEQ if i == 1 else 0) | (MARKER if i == len(frags) - 1 else 0))
lossy += chunk(SLICE, NEXT_TS | MARKER)
lossy += chunk(stap_a(SPS, PPS, IDR[:40]), NEXT_TS | MARKER)
write("fu_a_loss_recovery.bin", bytes([OPTIONS_DROP_8K]) + lossy)

# One STAP-A holding everything, and a duplicate, a reset and a flush.
misc = chunk(stap_a(SPS, PPS, IDR[:100]), MARKER)
misc += chunk(SLICE, NEXT_TS)
misc += chunk(SLICE, REPEAT_SEQ)
misc += chunk(SLICE, FLUSH | NEXT_TS)
misc += chunk(stap_a(SPS, PPS, IDR[:30]), RESET | NEXT_TS | MARKER)
write("stap_a_duplicate_reset.bin", bytes([OPTIONS_KEEP_8K]) + misc)

# Malformed packets: each a reason the depacketizer counts.
bad = b"".join([
    chunk(b"", 0),
    chunk(bytes([0xE5, 0x88]), 0),                    # F set
    chunk(bytes([0x78]), 0),                          # STAP-A with no unit
    chunk(bytes([0x78, 0x00, 0x05, 0x41, 0x01]), 0),  # size overrun
    chunk(bytes([0x78, 0x00, 0x00]), 0),              # zero size
    chunk(bytes([0x78, 0x00, 0x01, 0x1C]), 0),        # aggregated type 28
    chunk(bytes([0x7C]), 0),                          # FU-A without FU header
    chunk(bytes([0x7C, 0xC5, 0x01]), 0),              # S and E
    chunk(bytes([0x7C, 0x98, 0x01]), 0),              # FU type 24
    chunk(bytes([0x79, 0x00, 0x01]), 0),              # STAP-B: unsupported
    chunk(bytes([0x1E, 0x00]), MARKER),               # type 30: reserved
])
write("malformed.bin", bytes([OPTIONS_KEEP_8K]) + bad)

# An access unit over a 64-octet limit, then one that fits.
big = chunk(stap_a(SPS, PPS)) + chunk(IDR[:120], MARKER)
big += chunk(stap_a(SPS, PPS, IDR[:20]), NEXT_TS | MARKER)
write("oversize.bin", bytes([OPTIONS_DROP_64]) + big)

# h264_packetizer: options byte (bits 0-5: max payload 8 + 8n, bit 6: mode 0, bit 7: no
# aggregation), then an Annex B access unit.
SC4, SC3 = b"\x00\x00\x00\x01", b"\x00\x00\x01"
BIG_IDR = bytes([0x65, 0x88, 0x84]) + bytes(range(1, 256)) * 2
write("keyframe.bin", bytes([16]) + SC4 + SPS + SC4 + PPS + SC3 + BIG_IDR, "h264_packetizer")
write("p_frame_small_mtu.bin", bytes([1]) + SC3 + SLICE + SC3 + bytes([0x06, 0x05, 0x80]) + SC3 + BIG_IDR[:100],
      "h264_packetizer")
write("mode0.bin", bytes([0x40 | 40]) + SC4 + SPS + SC4 + PPS + SC4 + SLICE, "h264_packetizer")
write("no_aggregation_trailing_zeros.bin",
      bytes([0x80 | 8]) + b"\x00\x00" + SC4 + SPS + b"\x00\x00" + SC3 + PPS + b"\x00\x00", "h264_packetizer")
