// VideoCompositor: the conference's pictures, each scaled into its tile of a layout, as one I420 frame.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "allocator/api_types.h"
#include "mixer/video_frame.h"

struct SwsContext;

namespace confab::mixer {

using allocator::Layout;

struct CompositorSettings {
  int width = 1280;  // even; 640x360 is the small alternative
  int height = 720;  // even
  Layout layout = Layout::k2x2;
};

// One participant's place in the composite, in display order (the active speaker first).
struct TileSource {
  uint64_t participant_id = 0;
  // nullptr: no video, or no picture decoded yet; the tile is plain kPlainTile grey.
  const VideoFrameView* picture = nullptr;
  // Changes whenever the picture does (VideoDecoder::generation()); an unchanged id, generation,
  // size and tile means the tile is already right and is not scaled again.
  uint64_t generation = 0;
};

struct CompositorCounters {
  uint64_t composes = 0;
  uint64_t scales = 0;        // sws_scale calls: one per tile whose picture changed
  uint64_t tiles_copied = 0;  // tiles (re)drawn into the output: changed pictures, plain and empty tiles
  uint64_t scaler_setups = 0; // libswscale contexts made (a slot saw a new source or tile size)
  uint64_t errors = 0;        // libswscale refused a size; the tile is drawn plain instead
};

constexpr size_t kMaxTiles = 16;  // 4x4

// Number of tiles of a layout: 1, 4, 9, 16, and 8 for speaker plus thumbnails.
size_t tile_count(Layout layout);

// The tiles of `layout` on a width x height frame, in display order, written to `out` (which holds
// at least tile_count(layout)); returns how many. Every edge is even (the I420 chroma grid).
//   Grids n x n: equal cells, edges at floor(i * size / n) rounded down to even.
//   Speaker plus thumbnails: the frame cut into a 4x4 grid; the speaker takes the top-left 3x3
//   cells (960x540 of 1280x720: the same 16:9 as the frame, so a 16:9 speaker fills it), seven
//   thumbnails of one cell each (320x180) take the right column top to bottom, then the bottom row
//   left to right. No space is wasted and every tile keeps the frame's aspect ratio.
size_t layout_tiles(Layout layout, int width, int height, std::span<Rect> out);

// Draws the composite picture of one conference. Owned by one media worker, not thread-safe.
//
// The output frame persists between compose() calls, and each tile slot remembers what it shows
// (participant, generation, picture size): a tile is scaled (libswscale, aspect kept, black bars)
// and redrawn only when that changed, or when the layout did. A picture is scaled into the slot's
// own buffer (aligned rows, allocated once per layout) and copied into the frame with its bars,
// so that libswscale always writes aligned rows.
//
// Memory: the constructor and set_layout() allocate; compose() allocates only in libswscale,
// when a slot meets a source size, range or tile size other than its last (one context per slot,
// for the last sizes). Steady state, pictures changing or not: nothing.
class VideoCompositor {
 public:
  explicit VideoCompositor(const CompositorSettings& settings);
  ~VideoCompositor();
  VideoCompositor(const VideoCompositor&) = delete;
  VideoCompositor& operator=(const VideoCompositor&) = delete;

  // Takes effect at the next compose(), which redraws everything.
  void set_layout(Layout layout);
  Layout layout() const { return layout_; }
  std::span<const Rect> tiles() const { return std::span<const Rect>(tiles_.data(), tile_count_); }

  // Sources beyond the layout's tiles are not shown; tiles beyond the sources are black. The
  // pictures need to live only during the call.
  const VideoFrame& compose(std::span<const TileSource> sources);

  const VideoFrame& frame() const { return frame_; }
  const CompositorCounters& counters() const { return counters_; }

 private:
  enum class Content : uint8_t { kNone, kEmpty, kPlain, kPicture };
  struct Slot {
    Content content = Content::kNone;  // kNone: not drawn since the last layout change
    uint64_t participant_id = 0;
    uint64_t generation = 0;
    int source_width = 0;
    int source_height = 0;
    bool source_full_range = false;
    Rect fitted;  // the scaled picture's place in the frame, inside the tile
    VideoFrame scaled;  // the tile's size; the picture at its top-left
    SwsContext* scaler = nullptr;
  };

  void apply_layout(Layout layout);
  void draw(size_t index, const TileSource* source);
  bool scale(Slot& slot, const VideoFrameView& picture, Rect tile);

  const int width_;
  const int height_;
  Layout layout_;
  bool layout_changed_ = true;
  size_t tile_count_ = 0;
  std::array<Rect, kMaxTiles> tiles_{};
  std::array<Slot, kMaxTiles> slots_{};
  VideoFrame frame_;
  CompositorCounters counters_;
};

// Where a source_width x source_height picture goes in `tile` keeping its aspect ratio: as large
// as fits, centred, even edges, at least 2x2.
Rect fit_rect(int source_width, int source_height, Rect tile);

}  // namespace confab::mixer
