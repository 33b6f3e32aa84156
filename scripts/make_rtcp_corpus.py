#!/usr/bin/env python3
# Writes the RTCP compound seed corpus (one small binary file per packet shape) to fuzz/corpus/rtcp_compound/.
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus", "rtcp_compound")


def header(count, pt, body, padding=False):
    # RFC 3550 6.4.1: V=2, P, RC/FMT; length in 32-bit words minus one.
    assert len(body) % 4 == 0
    return struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, pt, len(body) // 4) + body


def block(ssrc, fraction, lost, seq, jitter, lsr, dlsr):
    return struct.pack("!IB", ssrc, fraction) + (lost & 0xFFFFFF).to_bytes(3, "big") + struct.pack(
        "!IIII", seq, jitter, lsr, dlsr)


def sdes_cname(ssrc, cname):
    chunk = struct.pack("!IBB", ssrc, 1, len(cname)) + cname + b"\0"
    chunk += b"\0" * (-len(chunk) % 4)
    return header(1, 202, chunk)


def bye(ssrcs, reason=b""):
    body = b"".join(struct.pack("!I", s) for s in ssrcs)
    if reason:
        r = bytes([len(reason)]) + reason
        body += r + b"\0" * (-len(r) % 4)
    return header(len(ssrcs), 203, body)


SR = header(1, 200, struct.pack("!IQIII", 0x5F3A1107, 0xE958407A80000000, 2880000, 800, 800000) +
            block(0x2B4C6E9A, 5, 42, 0x12345, 128, 0xE9584000, 0x18000))
RR = header(1, 201, struct.pack("!I", 1) + block(0x2B4C6E9A, 0, -3, 0x10005, 3000, 0xA1B2C3D4, 0x20000))
NACK = header(1, 205, struct.pack("!IIHHHH", 1, 0x2B4C6E9A, 100, 0x8005, 65535, 0x0001))
PLI = header(1, 206, struct.pack("!II", 1, 0x2B4C6E9A))
FIR = header(4, 206, struct.pack("!IIIBxxxIBxxx", 1, 0, 0x2B4C6E9A, 7, 0x3C5D7E8F, 8))
APP = header(3, 204, struct.pack("!I", 9) + b"CNFB" + b"\x01\x02\x03\x04")
XR = header(5, 207, b"\xde\xad\xbe\xef\xc9\xca\x00\x00")

SEEDS = {
    "sr_sdes": SR + sdes_cname(0x5F3A1107, b"lavf60.3.100"),
    "rr_sdes_bye": RR + sdes_cname(1, b"4TOk42mSjXCkVIa6") + bye([1, 2], b"teardown"),
    "rr_nack": RR + NACK,
    "pli": PLI,
    "rr_fir": RR + FIR,
    "rr_unknown_sdes": RR + XR + sdes_cname(1, b"x"),
    "app": APP,
    "rr_bye_padded": RR + header(1, 203, struct.pack("!I", 1) + b"\0\0\0\x04", padding=True),
    "rr_nack_pli": RR + NACK + PLI,
}

for name, data in SEEDS.items():
    assert len(data) < 2048
    with open(os.path.join(HERE, name + ".bin"), "wb") as f:
        f.write(data)
