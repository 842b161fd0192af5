// The input transform of torchvision's classification recipes, as the Python
// ParetoPipe applied it to CIFAR-10 (PIL images):
//   Resize(side) (bilinear), ToTensor() (to [0, 1]), Normalize(mean, std).
// The resize reproduces Pillow's (9.x) two-pass fixed-point bilinear
// resampling (libImaging/Resample.c), the rounding to 8 bits after each pass
// included, so a split model sees the very tensors the Python original fed
// its model; the rest is the same float32 arithmetic as torchvision's.
//
// Owns: pixel arithmetic. Must not touch: files, models.
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "data/cifar10.h"
#include "data/image_file.h"

namespace paretopipe {

// Resizes one 8-bit plane of in_h x in_w (row-major, at `plane`) to
// out_h x out_w as Pillow's Image.resize(..., BILINEAR) does.
// REQUIRES: sizes >= 1.
std::vector<uint8_t> ResizeBilinearLikePillow(const uint8_t* plane, int in_h, int in_w, int out_h,
                                              int out_w);

struct InputTransform {
  int side = 224;  // Resize both sides to this (the images are square).
  // Per channel; 0.5 as in the Python ParetoPipe, which maps [0, 1] to [-1, 1].
  std::array<float, 3> mean = {0.5f, 0.5f, 0.5f};
  std::array<float, 3> std = {0.5f, 0.5f, 0.5f};
};

// One image as a float32 3 x side x side tensor (row-major), as torchvision's
// Resize(side) (the shorter side to `side`, the other in proportion,
// truncated), CenterCrop(side), ToTensor(), Normalize(mean, std) make it.
// REQUIRES: image.height, image.width >= 1.
std::vector<float> TransformImage(const RgbImage& image, const InputTransform& transform);

// Images [first, first + count) of `images` as a float32 N x C x side x side
// batch (row-major), transformed as TransformImage.
// REQUIRES: first + count <= images.count(); std has no zero.
std::vector<float> TransformImages(const LabeledImages& images, size_t first, size_t count,
                                   const InputTransform& transform);

}  // namespace paretopipe
