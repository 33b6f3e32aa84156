// Names and per-codec defaults of the control plane's vocabulary.
#include "allocator/api_types.h"

#include <array>

namespace confab::allocator {

namespace {
constexpr std::array<std::string_view, 4> kCodecNames = {"opus", "pcmu", "pcma", "h264"};
constexpr std::array<std::string_view, 5> kLayoutNames = {"1x1", "2x2", "3x3", "4x4", "speaker_thumbnails"};
constexpr std::array<std::string_view, 3> kNodeStateNames = {"up", "draining", "drained"};

template <typename Enum, size_t N>
std::optional<Enum> find_name(const std::array<std::string_view, N>& names, std::string_view text) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == text) return static_cast<Enum>(i);
  }
  return std::nullopt;
}
}  // namespace

std::string_view to_string(Medium medium) { return medium == Medium::kAudio ? "audio" : "video"; }
std::string_view to_string(Codec codec) { return kCodecNames[static_cast<size_t>(codec)]; }
std::string_view to_string(Layout layout) { return kLayoutNames[static_cast<size_t>(layout)]; }
std::string_view to_string(NodeState state) { return kNodeStateNames[static_cast<size_t>(state)]; }
std::optional<Codec> parse_codec(std::string_view text) { return find_name<Codec>(kCodecNames, text); }
std::optional<Layout> parse_layout(std::string_view text) { return find_name<Layout>(kLayoutNames, text); }

Medium medium_of(Codec codec) { return codec == Codec::kH264 ? Medium::kVideo : Medium::kAudio; }

uint8_t default_payload_type(Codec codec) {
  switch (codec) {
    case Codec::kOpus: return 111;
    case Codec::kPcmu: return 0;
    case Codec::kPcma: return 8;
    case Codec::kH264: return 96;
  }
  return 0;
}

uint32_t clock_rate(Codec codec) {
  switch (codec) {
    case Codec::kOpus: return 48000;
    case Codec::kPcmu:
    case Codec::kPcma: return 8000;
    case Codec::kH264: return 90000;
  }
  return 0;
}

}  // namespace confab::allocator
