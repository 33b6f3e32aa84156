// VideoCompositor: layout geometry, per-slot scaling with libswscale, and drawing tiles into the frame.
#include "mixer/video_compositor.h"

extern "C" {
#include <libavutil/opt.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cassert>

namespace confab::mixer {
namespace {

// Bilinear: a clear picture for the 2:1 to 4:1 downscales of grid tiles, cheaper than bicubic.
// bench/video_bench.cpp: four changed 640x360 pictures into a 2x2 1280x720 frame, about 250 us.
constexpr int kScaleFlags = SWS_BILINEAR;
constexpr int kSpeakerGrid = 4;   // speaker plus thumbnails cuts the frame into 4x4 cells
constexpr int kSpeakerCells = 3;  // of which the speaker takes 3x3
constexpr size_t kThumbnails = 2 * kSpeakerCells + 1;  // the rest: 3 on the right, 4 below

int even(int value) { return value & ~1; }

// Edge i of n equal parts of `size`, on the chroma grid.
int grid_edge(int i, int n, int size) { return i == n ? size : even(i * size / n); }

Rect grid_cell(int column, int row, int columns, int rows, int width, int height) {
  const int x = grid_edge(column, columns, width);
  const int y = grid_edge(row, rows, height);
  return Rect{x, y, grid_edge(column + 1, columns, width) - x, grid_edge(row + 1, rows, height) - y};
}

int grid_size(Layout layout) {
  switch (layout) {
    case Layout::k1x1:
      return 1;
    case Layout::k2x2:
      return 2;
    case Layout::k3x3:
      return 3;
    case Layout::k4x4:
      return 4;
    case Layout::kSpeakerThumbnails:
      break;
  }
  return 0;
}

// A YUV 4:2:0 to YUV 4:2:0 scaler; a full-range source is squeezed into limited range (the
// output's), BT.601 both sides. nullptr if libswscale refuses the sizes.
SwsContext* make_scaler(int source_width, int source_height, bool full_range, int width, int height) {
  SwsContext* scaler = sws_alloc_context();
  if (scaler == nullptr) return nullptr;
  const bool set = av_opt_set_int(scaler, "srcw", source_width, 0) >= 0 &&
                   av_opt_set_int(scaler, "srch", source_height, 0) >= 0 &&
                   av_opt_set_int(scaler, "src_format", AV_PIX_FMT_YUV420P, 0) >= 0 &&
                   av_opt_set_int(scaler, "src_range", full_range ? 1 : 0, 0) >= 0 &&
                   av_opt_set_int(scaler, "dstw", width, 0) >= 0 && av_opt_set_int(scaler, "dsth", height, 0) >= 0 &&
                   av_opt_set_int(scaler, "dst_format", AV_PIX_FMT_YUV420P, 0) >= 0 &&
                   av_opt_set_int(scaler, "dst_range", 0, 0) >= 0 &&
                   av_opt_set_int(scaler, "sws_flags", kScaleFlags, 0) >= 0;
  if (!set || sws_init_context(scaler, nullptr, nullptr) < 0) {
    sws_freeContext(scaler);
    return nullptr;
  }
  return scaler;
}

}  // namespace

size_t tile_count(Layout layout) {
  if (layout == Layout::kSpeakerThumbnails) return 1 + kThumbnails;
  const auto n = static_cast<size_t>(grid_size(layout));
  return n * n;
}

size_t layout_tiles(Layout layout, int width, int height, std::span<Rect> out) {
  assert(out.size() >= tile_count(layout));
  if (layout == Layout::kSpeakerThumbnails) {
    const int right = grid_edge(kSpeakerCells, kSpeakerGrid, width);
    const int bottom = grid_edge(kSpeakerCells, kSpeakerGrid, height);
    out[0] = Rect{0, 0, right, bottom};
    size_t index = 1;
    for (int row = 0; row < kSpeakerCells; ++row) {
      out[index++] = grid_cell(kSpeakerCells, row, kSpeakerGrid, kSpeakerGrid, width, height);
    }
    for (int column = 0; column < kSpeakerGrid; ++column) {
      out[index++] = grid_cell(column, kSpeakerCells, kSpeakerGrid, kSpeakerGrid, width, height);
    }
    return index;
  }
  const int n = grid_size(layout);
  size_t index = 0;
  for (int row = 0; row < n; ++row) {
    for (int column = 0; column < n; ++column) out[index++] = grid_cell(column, row, n, n, width, height);
  }
  return index;
}

Rect fit_rect(int source_width, int source_height, Rect tile) {
  if (source_width <= 0 || source_height <= 0) return tile;
  int width = tile.width;
  int height = tile.height;
  // Compare aspect ratios by cross-multiplying: the source is wider than the tile (bars above and
  // below) or not (bars left and right).
  if (static_cast<int64_t>(source_width) * tile.height > static_cast<int64_t>(source_height) * tile.width) {
    height = static_cast<int>(static_cast<int64_t>(tile.width) * source_height / source_width);
  } else {
    width = static_cast<int>(static_cast<int64_t>(tile.height) * source_width / source_height);
  }
  width = std::clamp(even(width), 2, tile.width);
  height = std::clamp(even(height), 2, tile.height);
  return Rect{tile.x + even((tile.width - width) / 2), tile.y + even((tile.height - height) / 2), width, height};
}

VideoCompositor::VideoCompositor(const CompositorSettings& settings)
    : width_(settings.width), height_(settings.height), layout_(settings.layout), frame_(settings.width, settings.height) {
  assert(width_ % 2 == 0 && height_ % 2 == 0);
  apply_layout(layout_);
}

VideoCompositor::~VideoCompositor() {
  for (Slot& slot : slots_) sws_freeContext(slot.scaler);
}

void VideoCompositor::set_layout(Layout layout) {
  if (layout != layout_) apply_layout(layout);
}

void VideoCompositor::apply_layout(Layout layout) {
  layout_ = layout;
  layout_changed_ = true;
  tile_count_ = layout_tiles(layout, width_, height_, tiles_);
  for (size_t i = 0; i < kMaxTiles; ++i) {
    Slot& slot = slots_[i];
    slot.content = Content::kNone;
    if (i < tile_count_) {
      const Rect& tile = tiles_[i];
      if (slot.scaled.width() != tile.width || slot.scaled.height() != tile.height) {
        slot.scaled = VideoFrame(tile.width, tile.height);
      }
    } else {
      slot.scaled = VideoFrame();
    }
  }
}

const VideoFrame& VideoCompositor::compose(std::span<const TileSource> sources) {
  ++counters_.composes;
  if (layout_changed_) {
    // Clears what the old layout drew outside the new tiles' pictures.
    frame_.fill(kBlack);
    layout_changed_ = false;
  }
  for (size_t i = 0; i < tile_count_; ++i) draw(i, i < sources.size() ? &sources[i] : nullptr);
  return frame_;
}

void VideoCompositor::draw(size_t index, const TileSource* source) {
  Slot& slot = slots_[index];
  const Rect tile = tiles_[index];
  const Content wanted = source == nullptr ? Content::kEmpty
                         : source->picture == nullptr ? Content::kPlain
                                                      : Content::kPicture;
  if (wanted != Content::kPicture) {
    if (slot.content == wanted) return;
    frame_.fill_rect(tile, wanted == Content::kEmpty ? kBlack : kPlainTile);
    slot.content = wanted;
    ++counters_.tiles_copied;
    return;
  }
  const VideoFrameView& picture = *source->picture;
  if (slot.content == Content::kPicture && slot.participant_id == source->participant_id &&
      slot.generation == source->generation && slot.source_width == picture.width &&
      slot.source_height == picture.height && slot.source_full_range == picture.full_range) {
    return;
  }
  if (!scale(slot, picture, tile)) {
    ++counters_.errors;
    frame_.fill_rect(tile, kPlainTile);
    slot.content = Content::kPlain;
    ++counters_.tiles_copied;
    return;
  }
  // Letterbox (bars above and below) or pillarbox (left and right) around the picture.
  const Rect& fitted = slot.fitted;
  const int fitted_bottom = fitted.y + fitted.height;
  const int fitted_right = fitted.x + fitted.width;
  const Rect bars[] = {
      Rect{tile.x, tile.y, tile.width, fitted.y - tile.y},
      Rect{tile.x, fitted_bottom, tile.width, tile.y + tile.height - fitted_bottom},
      Rect{tile.x, fitted.y, fitted.x - tile.x, fitted.height},
      Rect{fitted_right, fitted.y, tile.x + tile.width - fitted_right, fitted.height},
  };
  for (const Rect& bar : bars) {
    if (bar.width > 0 && bar.height > 0) frame_.fill_rect(bar, kBlack);
  }
  copy_picture(slot.scaled.view(), fitted.width, fitted.height, frame_, fitted.x, fitted.y);
  slot.content = Content::kPicture;
  slot.participant_id = source->participant_id;
  slot.generation = source->generation;
  slot.source_width = picture.width;
  slot.source_height = picture.height;
  ++counters_.tiles_copied;
}

bool VideoCompositor::scale(Slot& slot, const VideoFrameView& picture, Rect tile) {
  const Rect fitted = fit_rect(picture.width, picture.height, tile);
  if (slot.scaler == nullptr || slot.source_width != picture.width || slot.source_height != picture.height ||
      slot.source_full_range != picture.full_range || slot.fitted.width != fitted.width ||
      slot.fitted.height != fitted.height) {
    // A new context only when the sizes or the range differ from the slot's last. Ranges are set
    // before sws_init_context: it picks a plain copy for same-size, same-format pictures, which
    // would skip the range conversion set later with sws_setColorspaceDetails.
    sws_freeContext(slot.scaler);
    slot.scaler = make_scaler(picture.width, picture.height, picture.full_range, fitted.width, fitted.height);
    ++counters_.scaler_setups;
    // Until a scale succeeds the slot's remembered size must not match anything.
    slot.source_width = 0;
    slot.source_height = 0;
    if (slot.scaler == nullptr) return false;
  }
  slot.fitted = fitted;
  VideoFrame& out = slot.scaled;
  uint8_t* const planes[kPlaneCount] = {out.plane(0), out.plane(1), out.plane(2)};
  const int strides[kPlaneCount] = {out.stride(0), out.stride(1), out.stride(2)};
  ++counters_.scales;
  const int rows = sws_scale(slot.scaler, picture.planes.data(), picture.strides.data(), 0, picture.height, planes,
                             strides);
  if (rows != fitted.height) {
    slot.source_width = 0;
    return false;
  }
  slot.source_width = picture.width;
  slot.source_height = picture.height;
  slot.source_full_range = picture.full_range;
  return true;
}

}  // namespace confab::mixer
