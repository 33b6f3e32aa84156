// Big-endian (network order) loads and stores on byte spans: the only way wire fields are read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace confab::transport {

// Callers check lengths before reading; these only assert it in debug builds.
inline uint8_t load_u8(std::span<const uint8_t> b, size_t off) { return b[off]; }

inline uint16_t load_be16(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}

inline uint32_t load_be24(std::span<const uint8_t> b, size_t off) {
  return (uint32_t{b[off]} << 16) | (uint32_t{b[off + 1]} << 8) | uint32_t{b[off + 2]};
}

inline uint32_t load_be32(std::span<const uint8_t> b, size_t off) {
  return (uint32_t{b[off]} << 24) | (uint32_t{b[off + 1]} << 16) | (uint32_t{b[off + 2]} << 8) |
         uint32_t{b[off + 3]};
}

inline uint64_t load_be64(std::span<const uint8_t> b, size_t off) {
  return (uint64_t{load_be32(b, off)} << 32) | load_be32(b, off + 4);
}

inline void store_u8(std::span<uint8_t> b, size_t off, uint8_t v) { b[off] = v; }

inline void store_be16(std::span<uint8_t> b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}

inline void store_be24(std::span<uint8_t> b, size_t off, uint32_t v) {
  b[off] = static_cast<uint8_t>(v >> 16);
  b[off + 1] = static_cast<uint8_t>(v >> 8);
  b[off + 2] = static_cast<uint8_t>(v);
}

inline void store_be32(std::span<uint8_t> b, size_t off, uint32_t v) {
  b[off] = static_cast<uint8_t>(v >> 24);
  b[off + 1] = static_cast<uint8_t>(v >> 16);
  b[off + 2] = static_cast<uint8_t>(v >> 8);
  b[off + 3] = static_cast<uint8_t>(v);
}

inline void store_be64(std::span<uint8_t> b, size_t off, uint64_t v) {
  store_be32(b, off, static_cast<uint32_t>(v >> 32));
  store_be32(b, off + 4, static_cast<uint32_t>(v));
}

}  // namespace confab::transport
