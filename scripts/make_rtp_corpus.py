#!/usr/bin/env python3
"""Writes the seed corpora for fuzz/rtp_packet_fuzz.cpp and fuzz/rtp_header_extension_fuzz.cpp."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus")


def rtp(pt, seq, ts, ssrc, marker=False, csrcs=(), ext=None, payload=b"", padding=0):
    """ext is (profile, block) with len(block) % 4 == 0."""
    first = 0x80 | len(csrcs)
    if padding:
        first |= 0x20
    if ext is not None:
        first |= 0x10
    out = struct.pack("!BBHII", first, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    for c in csrcs:
        out += struct.pack("!I", c)
    if ext is not None:
        profile, block = ext
        assert len(block) % 4 == 0
        out += struct.pack("!HH", profile, len(block) // 4) + block
    out += payload
    if padding:
        out += b"\x00" * (padding - 1) + bytes([padding])
    return out


def write(subdir, name, data):
    path = os.path.join(ROOT, subdir)
    os.makedirs(path, exist_ok=True)
    assert len(data) < 2048
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


opus_frame = bytes([0x78]) + bytes(range(1, 180))
level_block = bytes([0x10, 0xAA, 0x00, 0x00])  # ID 1 L=0: V=1 level 42
packets = {
    "opus_audio_level.bin": rtp(111, 6699, 123456, 0xDEADBEEF, True, ext=(0xBEDE, level_block), payload=opus_frame),
    "minimal.bin": rtp(0, 1, 0, 1),
    "csrcs_two_byte_padding.bin": rtp(96, 5, 1000, 0x11223344, csrcs=(10, 11),
                                      ext=(0x1000, bytes([0x14, 3, 1, 2, 3, 0, 7, 0])),
                                      payload=b"\xca\xfe", padding=3),
    "padding_only.bin": rtp(111, 7, 960, 2, padding=16),
    "one_byte_id15.bin": rtp(111, 8, 1920, 3, ext=(0xBEDE, bytes([0x10, 0x55, 0xF7, 0x20])), payload=b"\xf8\xff\xfe"),
    "opaque_profile.bin": rtp(100, 9, 0, 4, ext=(0x1234, bytes([0x1F, 0xFF, 0xFF, 0xFF])), payload=b"x" * 20),
    "mixer_csrc_levels.bin": rtp(111, 10, 2880, 5, csrcs=(0xA1, 0xB2, 0xC3),
                                 ext=(0xBEDE, bytes([0x10, 0x90, 0x22, 0x0C, 0x28, 0x7F, 0x00, 0x00])),
                                 payload=opus_frame[:60]),
    "video_two_byte_many.bin": rtp(96, 65535, 0xFFFFFFFF, 6, True,
                                   ext=(0x100F, bytes([0x01, 0x01, 0x85, 0x0F, 0x00, 0xFF, 0x11]) + bytes(17) +
                                        bytes(4)),
                                   payload=bytes([0x7C, 0x85]) + bytes(range(200)), padding=4),
}
for name, data in packets.items():
    write("rtp_packet", name, data)

# Header extension target: first byte selects the profile (see pick_profile in the fuzz target):
# 0x00 one-byte, 0x01 | appbits << 4 two-byte, 0x02 opaque.
blocks = {
    "one_byte_level.bin": b"\x00" + level_block,
    "one_byte_padding_mixed.bin": b"\x00" + bytes([0x00, 0x10, 0x8A, 0x00, 0x32, 1, 2, 3, 0xE1, 0xAB, 0xCD, 0x00]),
    "one_byte_id15.bin": b"\x00" + bytes([0x10, 0x01, 0xFF, 0x20]),
    "one_byte_sixteen.bin": b"\x00" + bytes([0x2F]) + bytes(range(16)) + bytes(3),
    "one_byte_overrun.bin": b"\x00" + bytes([0x10, 0x01, 0x23, 0xAA]),
    "two_byte_empty_elements.bin": b"\x31" + bytes([0x00, 0x0F, 0x00, 0xFF, 0x02, 0xAB, 0xCD, 0x00]),
    "two_byte_long.bin": b"\x01" + bytes([0x1E, 200]) + bytes(200) + bytes(2),
    "two_byte_no_length.bin": b"\x01" + bytes([0x00, 0x00, 0x00, 0x05]),
    "opaque.bin": b"\x02" + bytes([0x1F, 0xFF, 0xFF, 0xFF]),
}
for name, data in blocks.items():
    write("rtp_header_extension", name, data)
