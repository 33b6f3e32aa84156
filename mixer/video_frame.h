// VideoFrame: one 8-bit YUV 4:2:0 picture (I420) in planes allocated once, and the plane helpers
// the compositor and the tests use.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace confab::mixer {

// A colour as BT.601 limited-range Y, Cb, Cr.
struct YuvColour {
  uint8_t y = 0;
  uint8_t u = 0;
  uint8_t v = 0;
  friend bool operator==(const YuvColour&, const YuvColour&) = default;
};
constexpr YuvColour kBlack = {16, 128, 128};
// A participant without a picture to show (no video, or no keyframe yet): a plain dark tile.
constexpr YuvColour kPlainTile = {40, 128, 128};

// A rectangle in luma pixels. The compositor keeps x, y, width and height even, so that the
// matching chroma rectangle (all halved) covers exactly the same picture area.
struct Rect {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
  friend bool operator==(const Rect&, const Rect&) = default;
};

constexpr int kPlaneCount = 3;  // Y, U (Cb), V (Cr)

// A read-only look at someone else's I420 picture (a VideoFrame, a decoder's AVFrame). Plane 0 is
// width x height, planes 1 and 2 are ceil(width/2) x ceil(height/2).
struct VideoFrameView {
  std::array<const uint8_t*, kPlaneCount> planes{};
  std::array<int, kPlaneCount> strides{};
  int width = 0;
  int height = 0;
  // Y and C span 0-255 (H.264 E.2.1 video_full_range_flag, as some phone encoders send) instead
  // of 16-235/240. The compositor converts to limited range, which is what it sends.
  bool full_range = false;
};

inline int chroma_size(int luma_size) { return (luma_size + 1) / 2; }

// Owns one I420 picture. Rows start 64-byte aligned and strides are multiples of 64, which is what
// the SIMD paths of libswscale and x264 want. The buffer is allocated once by the constructor;
// nothing else allocates.
class VideoFrame {
 public:
  VideoFrame() = default;
  // width and height >= 1 (the compositor uses even sizes). The picture starts black.
  VideoFrame(int width, int height);

  int width() const { return width_; }
  int height() const { return height_; }
  bool empty() const { return buffer_ == nullptr; }
  uint8_t* plane(int index) { return planes_[static_cast<size_t>(index)]; }
  const uint8_t* plane(int index) const { return planes_[static_cast<size_t>(index)]; }
  int stride(int index) const { return strides_[static_cast<size_t>(index)]; }
  VideoFrameView view() const;

  void fill(YuvColour colour) { fill_rect(Rect{0, 0, width_, height_}, colour); }
  // `rect` must lie inside the picture; an odd x or y rounds the chroma rectangle down.
  void fill_rect(Rect rect, YuvColour colour);

  static constexpr size_t kAlignment = 64;

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };

  std::unique_ptr<uint8_t, Free> buffer_;
  std::array<uint8_t*, kPlaneCount> planes_{};
  std::array<int, kPlaneCount> strides_{};
  int width_ = 0;
  int height_ = 0;
};

// Mean Y, U and V of `rect` (luma pixels, even x/y/width/height for an exact chroma match) of a
// picture, rounded to nearest.
YuvColour mean_colour(const VideoFrameView& picture, Rect rect);

// Copies the `width` x `height` top-left area of `from` into `to` at (x, y) (even), plane by plane.
void copy_picture(const VideoFrameView& from, int width, int height, VideoFrame& to, int x, int y);

}  // namespace confab::mixer
