// VideoFrame: the I420 buffer, solid fills, rectangle means and copies.
#include "mixer/video_frame.h"

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>

namespace confab::mixer {
namespace {

size_t aligned(size_t n) { return (n + VideoFrame::kAlignment - 1) / VideoFrame::kAlignment * VideoFrame::kAlignment; }

}  // namespace

void VideoFrame::Free::operator()(uint8_t* p) const { std::free(p); }

VideoFrame::VideoFrame(int width, int height) : width_(width), height_(height) {
  assert(width > 0 && height > 0);
  const std::array<int, kPlaneCount> plane_widths = {width, chroma_size(width), chroma_size(width)};
  const std::array<int, kPlaneCount> plane_heights = {height, chroma_size(height), chroma_size(height)};
  std::array<size_t, kPlaneCount> offsets{};
  size_t total = 0;
  for (size_t i = 0; i < kPlaneCount; ++i) {
    strides_[i] = static_cast<int>(aligned(static_cast<size_t>(plane_widths[i])));
    offsets[i] = total;
    total += aligned(static_cast<size_t>(strides_[i]) * static_cast<size_t>(plane_heights[i]));
  }
  // One spare aligned block: SIMD scalers may read (never write) a little past a row's end.
  total += kAlignment;
  buffer_.reset(static_cast<uint8_t*>(std::aligned_alloc(kAlignment, total)));
  if (buffer_ == nullptr) throw std::bad_alloc();
  std::memset(buffer_.get() + total - kAlignment, 0, kAlignment);
  for (size_t i = 0; i < kPlaneCount; ++i) planes_[i] = buffer_.get() + offsets[i];
  fill(kBlack);
}

VideoFrameView VideoFrame::view() const {
  VideoFrameView v;
  for (size_t i = 0; i < kPlaneCount; ++i) {
    v.planes[i] = planes_[i];
    v.strides[i] = strides_[i];
  }
  v.width = width_;
  v.height = height_;
  return v;
}

void VideoFrame::fill_rect(Rect rect, YuvColour colour) {
  assert(rect.x >= 0 && rect.y >= 0 && rect.x + rect.width <= width_ && rect.y + rect.height <= height_);
  const std::array<uint8_t, kPlaneCount> values = {colour.y, colour.u, colour.v};
  for (size_t i = 0; i < kPlaneCount; ++i) {
    // Chroma covers 2x2 luma pixels: halve the origin down and the far edge up.
    const int x0 = i == 0 ? rect.x : rect.x / 2;
    const int y0 = i == 0 ? rect.y : rect.y / 2;
    const int x1 = i == 0 ? rect.x + rect.width : chroma_size(rect.x + rect.width);
    const int y1 = i == 0 ? rect.y + rect.height : chroma_size(rect.y + rect.height);
    for (int row = y0; row < y1; ++row) {
      std::memset(planes_[i] + static_cast<ptrdiff_t>(row) * strides_[i] + x0, values[i],
                  static_cast<size_t>(x1 - x0));
    }
  }
}

YuvColour mean_colour(const VideoFrameView& picture, Rect rect) {
  std::array<uint8_t, kPlaneCount> means{};
  for (size_t i = 0; i < kPlaneCount; ++i) {
    const int x0 = i == 0 ? rect.x : rect.x / 2;
    const int y0 = i == 0 ? rect.y : rect.y / 2;
    const int x1 = i == 0 ? rect.x + rect.width : chroma_size(rect.x + rect.width);
    const int y1 = i == 0 ? rect.y + rect.height : chroma_size(rect.y + rect.height);
    uint64_t sum = 0;
    for (int row = y0; row < y1; ++row) {
      const uint8_t* line = picture.planes[i] + static_cast<ptrdiff_t>(row) * picture.strides[i];
      for (int x = x0; x < x1; ++x) sum += line[x];
    }
    const auto count = static_cast<uint64_t>(x1 - x0) * static_cast<uint64_t>(y1 - y0);
    means[i] = count == 0 ? 0 : static_cast<uint8_t>((sum + count / 2) / count);
  }
  return YuvColour{means[0], means[1], means[2]};
}

void copy_picture(const VideoFrameView& from, int width, int height, VideoFrame& to, int x, int y) {
  assert(width <= from.width && height <= from.height);
  assert(x >= 0 && y >= 0 && x + width <= to.width() && y + height <= to.height());
  for (int i = 0; i < kPlaneCount; ++i) {
    const auto index = static_cast<size_t>(i);
    const int x0 = i == 0 ? x : x / 2;
    const int y0 = i == 0 ? y : y / 2;
    const int w = i == 0 ? width : chroma_size(width);
    const int h = i == 0 ? height : chroma_size(height);
    for (int row = 0; row < h; ++row) {
      std::memcpy(to.plane(i) + static_cast<ptrdiff_t>(y0 + row) * to.stride(i) + x0,
                  from.planes[index] + static_cast<ptrdiff_t>(row) * from.strides[index], static_cast<size_t>(w));
    }
  }
}

}  // namespace confab::mixer
