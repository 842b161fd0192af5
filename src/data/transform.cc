#include "data/transform.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace paretopipe {
namespace {

// Pillow's fixed point: coefficients are scaled by 2^22, leaving room for
// 8-bit pixels and the sum (Resample.c, PRECISION_BITS = 32 - 8 - 2).
constexpr int kPrecisionBits = 32 - 8 - 2;

double BilinearFilter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Pillow's precompute_coeffs for the bilinear filter (support 1) over the
// whole input, then normalize_coeffs_8bpc: per output pixel, the first input
// pixel used, how many, and their fixed-point weights (ksize per pixel).
struct Coefficients {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

Coefficients Precompute(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // Pillow rounds with (int)(v + 0.5), truncating toward zero.
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = BilinearFilter((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? k[x] / ww : k[x];
      c.weights[static_cast<size_t>(xx) * c.ksize + x] =
          w < 0 ? static_cast<int32_t>(-0.5 + w * (1 << kPrecisionBits))
                : static_cast<int32_t>(0.5 + w * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

uint8_t Clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

}  // namespace

std::vector<uint8_t> ResizeBilinearLikePillow(const uint8_t* plane, int in_h, int in_w, int out_h,
                                              int out_w) {
  const Coefficients horiz = Precompute(in_w, out_w);
  const Coefficients vert = Precompute(in_h, out_h);
  // Pillow's ImagingResampleInner: the horizontal pass covers only the rows
  // the vertical pass reads; each pass is skipped when its size is kept.
  const bool need_horizontal = out_w != in_w, need_vertical = out_h != in_h;
  const int row_first = vert.first[0];
  const int row_last = vert.first[out_h - 1] + vert.count[out_h - 1];
  std::vector<uint8_t> temp;
  int temp_first = 0;
  if (need_horizontal) {
    const int temp_rows = row_last - row_first;
    temp_first = row_first;
    temp.resize(static_cast<size_t>(temp_rows) * out_w);
    for (int y = 0; y < temp_rows; ++y) {
      const uint8_t* in = plane + static_cast<size_t>(y + row_first) * in_w;
      for (int xx = 0; xx < out_w; ++xx) {
        const int32_t* k = horiz.weights.data() + static_cast<size_t>(xx) * horiz.ksize;
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < horiz.count[xx]; ++x) ss += in[horiz.first[xx] + x] * k[x];
        temp[static_cast<size_t>(y) * out_w + xx] = Clip8(ss);
      }
    }
  } else {
    temp.assign(plane, plane + static_cast<size_t>(in_h) * in_w);
  }
  if (!need_vertical) return temp;
  const int width = need_horizontal ? out_w : in_w;
  std::vector<uint8_t> out(static_cast<size_t>(out_h) * width);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = vert.weights.data() + static_cast<size_t>(yy) * vert.ksize;
    const int first = vert.first[yy] - temp_first;
    for (int xx = 0; xx < width; ++xx) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < vert.count[yy]; ++y) {
        ss += temp[static_cast<size_t>(first + y) * width + xx] * k[y];
      }
      out[static_cast<size_t>(yy) * width + xx] = Clip8(ss);
    }
  }
  return out;
}

namespace {

// One planar RGB image of h x w at `chw` into 3 x side x side floats at `out`.
void TransformInto(const uint8_t* chw, int h, int w, const InputTransform& t, float* out) {
  // torchvision 0.14 _compute_resized_output_size: the long side is
  // int(side * long / short), a float division truncated.
  const int short_side = std::min(w, h), long_side = std::max(w, h);
  const int new_long =
      static_cast<int>(static_cast<double>(int64_t{t.side} * long_side) / short_side);
  const int new_w = w <= h ? t.side : new_long, new_h = w <= h ? new_long : t.side;
  // CenterCrop: Python's round(), which rounds halves to even, as
  // nearbyint does in the default rounding mode.
  const int top = static_cast<int>(std::nearbyint((new_h - t.side) / 2.0));
  const int left = static_cast<int>(std::nearbyint((new_w - t.side) / 2.0));
  const size_t plane_in = static_cast<size_t>(h) * w;
  const size_t plane_out = static_cast<size_t>(t.side) * t.side;
  for (int c = 0; c < 3; ++c) {
    const std::vector<uint8_t> resized =
        ResizeBilinearLikePillow(chw + c * plane_in, h, w, new_h, new_w);
    float* dst = out + c * plane_out;
    // torchvision: ToTensor divides by 255 in float32, Normalize subtracts
    // the mean, then divides by the std, each rounded to float32.
    for (int y = 0; y < t.side; ++y) {
      const uint8_t* row = resized.data() + static_cast<size_t>(y + top) * new_w + left;
      for (int x = 0; x < t.side; ++x) {
        dst[static_cast<size_t>(y) * t.side + x] =
            (static_cast<float>(row[x]) / 255.0f - t.mean[c]) / t.std[c];
      }
    }
  }
}

}  // namespace

std::vector<float> TransformImage(const RgbImage& image, const InputTransform& t) {
  std::vector<float> out(3 * static_cast<size_t>(t.side) * t.side);
  TransformInto(image.pixels.data(), image.height, image.width, t, out.data());
  return out;
}

std::vector<float> TransformImages(const LabeledImages& images, size_t first, size_t count,
                                   const InputTransform& t) {
  const size_t image_in = 3 * static_cast<size_t>(images.height) * images.width;
  const size_t image_out = 3 * static_cast<size_t>(t.side) * t.side;
  std::vector<float> out(count * image_out);
  for (size_t n = 0; n < count; ++n) {
    TransformInto(images.pixels.data() + (first + n) * image_in, images.height, images.width, t,
                  out.data() + n * image_out);
  }
  return out;
}

}  // namespace paretopipe
